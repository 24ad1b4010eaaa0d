package config

import (
	"fmt"
	"strings"
	"testing"
)

const largeCount = 100000

// largeConfig writes largeCount distinct /32s in 10.0.0.0/8, as JSON or as
// YAML: from 10.0.0.0/32 to 10.1.134.159/32.
func largeConfig(asJSON bool) []byte {
	var b strings.Builder
	if asJSON {
		b.WriteString("{\"nonMasqueradeCIDRs\": [\n")
	} else {
		b.WriteString("nonMasqueradeCIDRs:\n")
	}
	for i := range largeCount {
		switch {
		case !asJSON:
			b.WriteString("  - ")
		case i > 0:
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "%q", fmt.Sprintf("10.%d.%d.%d/32", i>>16, i>>8&255, i&255))
		if !asJSON {
			b.WriteString("\n")
		}
	}
	if asJSON {
		b.WriteString("],\n\"cidrLimit\": 100000}\n")
	} else {
		b.WriteString("cidrLimit: 100000\n")
	}
	return []byte(b.String())
}

func TestParseLarge(t *testing.T) {
	// Speed is measured by the benchmarks (BenchmarkParse*, make bench),
	// not asserted here: a loaded CI machine must not fail a correct parse.
	for _, tt := range []struct {
		name   string
		asJSON bool
	}{
		{"JSON", true},
		{"YAML", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := largeConfig(tt.asJSON)
			{
				cfg, err := Parse("large", data, Options{})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if n := len(cfg.NonMasqueradeCIDRs); n != largeCount {
					t.Fatalf("%d CIDRs, want %d", n, largeCount)
				}
				if first, last := cfg.NonMasqueradeCIDRs[0].String(), cfg.NonMasqueradeCIDRs[largeCount-1].String(); first != "10.0.0.0/32" || last != "10.1.134.159/32" {
					t.Fatalf("first %s, last %s", first, last)
				}
			}
		})
	}
	t.Run("over the limit, JSON problem position", func(t *testing.T) {
		data := largeConfig(true)
		data = append(data[:len(data)-len("100000}\n")], "99999}\n"...)
		_, err := Parse("large", data, Options{})
		checkProblems(t, err, "large", []want{{line: 1, col: 2, field: "nonMasqueradeCIDRs", msg: "100000 entries, over the cidrLimit of 99999"}})
	})
	t.Run("bad last entry, JSON problem position", func(t *testing.T) {
		data := largeConfig(true)
		data = []byte(strings.Replace(string(data), `"10.1.134.159/32"`, `"10.1.134.159/31"`, 1))
		_, err := Parse("large", data, Options{})
		checkProblems(t, err, "large", []want{{line: largeCount + 1, col: 1, field: fmt.Sprintf("nonMasqueradeCIDRs[%d]", largeCount-1), msg: "has host bits set"}})
	})
}

func BenchmarkParseLarge(b *testing.B) {
	for _, asJSON := range []bool{true, false} {
		name := map[bool]string{true: "JSON", false: "YAML"}[asJSON]
		b.Run(name, func(b *testing.B) {
			data := largeConfig(asJSON)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse("large", data, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
