package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseExceptionLists(t *testing.T) {
	for in, line := range map[string]int{
		"nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs: [10.20.0.0/16]\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n":             2,
		`{"nonMasqueradeCIDRs": ["10.0.0.0/8"], "masqueradeCIDRs": ["10.20.0.0/16"], "masqueradeSourceCIDRs": ["10.244.0.0/16"]}`: 1,
	} {
		cfg, err := Parse("cfg", []byte(in), Options{})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if !slices.Equal(cfg.MasqueradeCIDRs, prefixes("10.20.0.0/16")) || !slices.Equal(cfg.MasqueradeSourceCIDRs, prefixes("10.244.0.0/16")) {
			t.Errorf("%q: got masqueradeCIDRs %v, masqueradeSourceCIDRs %v", in, cfg.MasqueradeCIDRs, cfg.MasqueradeSourceCIDRs)
		}
		if got := cfg.Source(Masquerade, 0); got != (Source{File: "cfg", Line: line}) {
			t.Errorf("%q: source of masqueradeCIDRs[0] = %v, want cfg:%d", in, got, line)
		}
	}
	cfg, err := Parse("cfg", []byte("masqueradeCIDRs: [169.254.169.254/32]\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.NonMasqueradeCIDRs, rfc1918) {
		t.Errorf("masqueradeCIDRs alone changed the default nonMasqueradeCIDRs to %v", cfg.NonMasqueradeCIDRs)
	}
	if d := Default(Options{}); len(d.MasqueradeCIDRs) != 0 || len(d.MasqueradeSourceCIDRs) != 0 {
		t.Errorf("the defaults hold exceptions: %+v", d)
	}
}

func TestParseExceptionProblems(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"not a list", "masqueradeCIDRs: 10.20.0.0/16\n", `cfg:1:18: masqueradeCIDRs: must be a list of CIDRs, not a string (fix: write it as a list: ["10.20.0.0/16"])`},
		{"bad entry", "masqueradeCIDRs:\n  - 10.20.0.0/16\n  - 10.20.0.1/16\n", "cfg:3:5: masqueradeCIDRs[1]: "},
		{"IPv6 without --enable-ipv6", "masqueradeSourceCIDRs: [fd00::/64]\n", "cfg:1:25: masqueradeSourceCIDRs[0]: "},
		{"no value", "masqueradeSourceCIDRs:\n", "masqueradeSourceCIDRs: has no value"},
		{"empty source list", "masqueradeSourceCIDRs: []\n", "masqueradeSourceCIDRs: is empty, so nothing would be masqueraded (fix: list the pod CIDRs, or remove the key to consider every source)"},
		{"both lists in one file", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\nmasqueradeCIDRs:\n  - 10.0.0.0/8\n",
			"cfg:4: masqueradeCIDRs: 10.0.0.0/8 is also in nonMasqueradeCIDRs (line 2) (fix: keep it in one of the two lists)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("cfg", []byte(tt.in), Options{})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want a config error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got\n%v\nwant it to contain\n%s", err, tt.want)
			}
		})
	}
}

// TestSourcesAndWarnings: a drop-in directory, where each entry is traced to
// its file and line and conflicts between files are warnings.
func TestSourcesAndWarnings(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"00-base.yaml":    "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 192.168.0.0/16\n",
		"10-team-a.yaml":  "# exceptions for team A\nmasqueradeCIDRs:\n  - 10.20.0.0/16\n  - 192.168.7.0/24\n",
		"20-team-b.json":  `{"nonMasqueradeCIDRs": ["172.16.0.0/12"], "masqueradeCIDRs": ["203.0.113.0/24", "169.254.169.254/32"]}`,
		"30-conflict.yml": "nonMasqueradeCIDRs: [10.20.0.0/16]\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string, line int) Source { return Source{File: filepath.Join(dir, name), Line: line} }
	for _, c := range []struct {
		list List
		i    int
		want Source
	}{
		{NonMasquerade, 0, at("00-base.yaml", 2)},
		{NonMasquerade, 1, at("00-base.yaml", 3)},
		{NonMasquerade, 2, at("20-team-b.json", 1)},
		{NonMasquerade, 3, at("30-conflict.yml", 1)},
		{Masquerade, 1, at("10-team-a.yaml", 4)},
		{Masquerade, 3, at("20-team-b.json", 1)},
		{Masquerade, 4, Source{}},
	} {
		if got := cfg.Source(c.list, c.i); got != c.want {
			t.Errorf("%s[%d] (%v): source %v, want %v", c.list, c.i, cfg.Entries(c.list), got, c.want)
		}
	}
	contrib := cfg.Contributions()
	wantContrib := []Contribution{
		{File: filepath.Join(dir, "00-base.yaml"), Entries: [numLists]int{2, 0, 0}},
		{File: filepath.Join(dir, "10-team-a.yaml"), Entries: [numLists]int{0, 2, 0}},
		{File: filepath.Join(dir, "20-team-b.json"), Entries: [numLists]int{1, 2, 0}},
		{File: filepath.Join(dir, "30-conflict.yml"), Entries: [numLists]int{1, 0, 0}},
	}
	if !slices.Equal(contrib, wantContrib) {
		t.Errorf("contributions %+v, want %+v", contrib, wantContrib)
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		filepath.Join(dir, "10-team-a.yaml") + ":3: masqueradeCIDRs: 10.20.0.0/16 is also exempted by nonMasqueradeCIDRs in " +
			filepath.Join(dir, "30-conflict.yml") + ":1; masquerading wins (fix: keep it in one of the two files)",
		filepath.Join(dir, "20-team-b.json") + ":1: masqueradeCIDRs: 203.0.113.0/24 is not inside any nonMasqueradeCIDRs entry, so it is masqueraded anyway" +
			" (fix: remove it, or add the wider range it is an exception to to nonMasqueradeCIDRs)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Default(Options{}); d.Source(NonMasquerade, 0) != (Source{}) || d.Warnings() != nil {
		t.Error("the defaults have a source or warnings")
	}
}

// TestKeyCaseWarnings: keys in another case are read, as ip-masq-agent's
// encoding/json read them, and each is a warning with the spelling to use.
// The same key twice in two spellings is a duplicate (TestCompat).
func TestKeyCaseWarnings(t *testing.T) {
	cfg, err := Parse("cfg", []byte("NonMasqueradeCIDRs: [10.0.0.0/8]\nmasqlinklocal: true\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.NonMasqueradeCIDRs, prefixes("10.0.0.0/8")) || !cfg.MasqLinkLocal {
		t.Errorf("keys in another case were not read: %+v", cfg)
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		`cfg:1:1: NonMasqueradeCIDRs: read as "nonMasqueradeCIDRs", as ip-masq-agent did (fix: write "nonMasqueradeCIDRs")`,
		`cfg:2:1: masqlinklocal: read as "masqLinkLocal", as ip-masq-agent did (fix: write "masqLinkLocal")`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSourceWithoutIPv6Warns: with --enable-ipv6, a source list without an
// IPv6 prefix masquerades no IPv6 traffic; that is worth a warning.
func TestSourceWithoutIPv6Warns(t *testing.T) {
	for _, tc := range []struct {
		body string
		opts Options
		warn bool
	}{
		{"masqueradeSourceCIDRs: [10.244.0.0/16]\n", Options{EnableIPv6: true}, true},
		{"masqueradeSourceCIDRs: [10.244.0.0/16, fd00:244::/56]\n", Options{EnableIPv6: true}, false},
		{"masqueradeSourceCIDRs: [10.244.0.0/16]\n", Options{}, false},
	} {
		cfg, err := Parse("cfg", []byte(tc.body), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		ws := cfg.Warnings()
		if got := len(ws) == 1 && strings.HasPrefix(ws[0].String(), "cfg:1: masqueradeSourceCIDRs: lists no IPv6 source"); got != tc.warn {
			t.Errorf("%q with %+v: warnings %v, want one about IPv6: %t", tc.body, tc.opts, ws, tc.warn)
		}
	}
}
