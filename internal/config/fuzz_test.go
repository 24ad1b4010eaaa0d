package config

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// canonical is a config as a file would write it.
type canonical struct {
	NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs" yaml:"nonMasqueradeCIDRs"`
	MasqLinkLocal      bool     `json:"masqLinkLocal" yaml:"masqLinkLocal"`
	MasqLinkLocalIPv6  bool     `json:"masqLinkLocalIPv6" yaml:"masqLinkLocalIPv6"`
	ResyncInterval     string   `json:"resyncInterval" yaml:"resyncInterval"`
	CIDRLimit          int      `json:"cidrLimit" yaml:"cidrLimit"`
}

func toCanonical(c *Config) canonical {
	out := canonical{NonMasqueradeCIDRs: []string{}, MasqLinkLocal: c.MasqLinkLocal, MasqLinkLocalIPv6: c.MasqLinkLocalIPv6,
		ResyncInterval: c.ResyncInterval.String(), CIDRLimit: c.CIDRLimit}
	for _, p := range c.NonMasqueradeCIDRs {
		out.NonMasqueradeCIDRs = append(out.NonMasqueradeCIDRs, p.String())
	}
	return out
}

// samples reads the real-world configs in testdata: ip-masq-agent's README,
// and ConfigMap bodies as GKE, EKS, AKS, kops and Rancher clusters write them.
func samples(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = data
	}
	return out
}

func TestSamples(t *testing.T) {
	s := samples(t)
	if len(s) < 10 {
		t.Fatalf("%d samples in testdata, want the dozen or so real-world configs", len(s))
	}
	for name, data := range s {
		if _, err := Parse(name, data, Options{EnableIPv6: true}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// maxSeed keeps the fuzzer's seeds small, which it mutates and minimizes
// quickly: minimizing a new input grown from a 64 KiB seed stalled it for
// half a minute. TestLoadMalformed loads the larger malformed inputs.
const maxSeed = 4 << 10

func FuzzParse(f *testing.F) {
	s := samples(f)
	for _, name := range slices.Sorted(maps.Keys(s)) {
		f.Add(s[name], true)
		f.Add(s[name], false)
	}
	for _, tc := range malformedCases() {
		if len(tc.text) <= maxSeed {
			f.Add([]byte(tc.text), false)
		}
	}
	for _, s := range []string{
		"", "{}", "nonMasqueradeCIDRs: []\n", "nonMasqueradeCIDRs: [10.0.0.1/8, '::ffff:10.0.0.0/104', fe80::1%eth0/64]\n",
		`{"nonMasqueradeCIDRs": ["10.0.0.0/8", 1, null], "cidrLimit": 1, "resyncInterval": 60}`,
		"a: &a [1]\nb: *a\nnonMasqueradeCIDRs: *a\n", "masqLinkLocal: yes\n---\nx: 1\n", "\ufeff{\"masqLinkLocal\": true}",
		"nonMasqueradeCIDRs:\n\t- 10.0.0.0/8\n", "{nonMasqueradeCIDRs: [10.0.0.0/8,],}", "resyncInterval: 100ms\ncidrLimit: 3\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, ipv6 bool) {
		opts := Options{EnableIPv6: ipv6}
		cfg, err := Parse("fuzz", data, opts)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 || cfg != nil {
				t.Fatalf("Parse = %v, %v; want nil and an *Error with problems", cfg, err)
			}
			for _, p := range cerr.Problems {
				if p.File != "fuzz" || p.Message == "" || p.Line < 0 || p.Column < 0 || len(p.Field) > maxShown+len("…") {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		for _, p := range cfg.NonMasqueradeCIDRs {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" || (p.Addr().Is6() && !ipv6) {
				t.Fatalf("bad prefix %v in %+v", p, cfg)
			}
		}
		if cfg.ResyncInterval < minResyncInterval || cfg.CIDRLimit < 0 ||
			(cfg.CIDRLimit > 0 && len(cfg.NonMasqueradeCIDRs) > cfg.CIDRLimit) || len(cfg.Files) != 1 {
			t.Fatalf("bad config %+v", cfg)
		}
		c := toCanonical(cfg)
		asJSON, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		asYAML, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range [][]byte{asJSON, asYAML} {
			again, err := Parse("canonical", text, opts)
			if err != nil {
				t.Fatalf("re-parse of\n%s\nfailed: %v", text, err)
			}
			if !again.Equal(cfg) {
				t.Fatalf("re-parse of\n%s\n= %+v, want %+v", text, again, cfg)
			}
		}
	})
}
