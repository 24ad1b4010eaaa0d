package config

import (
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// canonical is a config as a file would write it.
type canonical struct {
	NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs" yaml:"nonMasqueradeCIDRs"`
	MasqLinkLocal      bool     `json:"masqLinkLocal" yaml:"masqLinkLocal"`
	MasqLinkLocalIPv6  bool     `json:"masqLinkLocalIPv6" yaml:"masqLinkLocalIPv6"`
	ResyncInterval     string   `json:"resyncInterval" yaml:"resyncInterval"`
	CIDRLimit          int      `json:"cidrLimit" yaml:"cidrLimit"`
	// masqd's own keys; an empty source list is invalid, so empty lists
	// are left out.
	MasqueradeCIDRs       []string `json:"masqueradeCIDRs,omitempty" yaml:"masqueradeCIDRs,omitempty"`
	MasqueradeSourceCIDRs []string `json:"masqueradeSourceCIDRs,omitempty" yaml:"masqueradeSourceCIDRs,omitempty"`
}

func toCanonical(c *Config) canonical {
	out := canonical{NonMasqueradeCIDRs: []string{}, MasqLinkLocal: c.MasqLinkLocal, MasqLinkLocalIPv6: c.MasqLinkLocalIPv6,
		ResyncInterval: c.ResyncInterval.String(), CIDRLimit: c.CIDRLimit}
	for _, p := range c.NonMasqueradeCIDRs {
		out.NonMasqueradeCIDRs = append(out.NonMasqueradeCIDRs, p.String())
	}
	for _, p := range c.MasqueradeCIDRs {
		out.MasqueradeCIDRs = append(out.MasqueradeCIDRs, p.String())
	}
	for _, p := range c.MasqueradeSourceCIDRs {
		out.MasqueradeSourceCIDRs = append(out.MasqueradeSourceCIDRs, p.String())
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

// TestSamples parses the real-world configs in testdata, as ip-masq-agent
// read them with --enable-ipv6, and checks every setting they parse to.
func TestSamples(t *testing.T) {
	rfc1918 := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	type want struct {
		cidrs             []string
		masqLinkLocal     bool
		masqLinkLocalIPv6 bool
		resync            time.Duration
		cidrLimit         int
		warnings          int
	}
	wants := map[string]want{
		"aks-style.yaml":             {cidrs: []string{"10.244.0.0/16", "10.0.0.0/16"}, masqLinkLocal: true, resync: time.Minute},
		"anchors.yaml":               {cidrs: []string{"10.0.0.0/8", "192.168.0.0/16"}, resync: time.Minute},
		"dual-stack.json":            {cidrs: []string{"10.0.0.0/8", "fd00::/8", "2001:db8:1234::/48", "2001:db8:5678::/48"}, masqLinkLocalIPv6: true, resync: 2 * time.Minute, cidrLimit: 10},
		"dual-stack.yaml":            {cidrs: []string{"10.0.0.0/8", "fd00::/8", "2001:db8::/32"}, masqLinkLocalIPv6: true, resync: 30 * time.Second},
		"eks-vpc.json":               {cidrs: []string{"192.168.0.0/16", "100.64.0.0/10"}, resync: time.Minute, cidrLimit: 64},
		"flow-style.yaml":            {cidrs: rfc1918, resync: time.Minute},
		"gke-all-reserved.yaml":      {cidrs: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"}, resync: time.Minute},
		"gke-default.yaml":           {cidrs: rfc1918, resync: time.Minute},
		"gke-pod-range.yaml":         {cidrs: []string{"10.4.0.0/14", "10.0.32.0/20", "10.128.0.0/20"}, masqLinkLocal: true, resync: time.Minute},
		"kops-style.yaml":            {cidrs: []string{"100.64.0.0/10", "172.20.0.0/16"}, masqLinkLocal: true, resync: 90 * time.Second},
		"masquerade-everything.yaml": {cidrs: []string{}, resync: time.Minute},
		"rancher-style.json":         {cidrs: []string{"10.42.0.0/16", "10.43.0.0/16", "192.168.0.0/16"}, masqLinkLocal: true, resync: 30 * time.Second, cidrLimit: 64},
		"readme-example.json":        {cidrs: []string{"10.0.0.0/8"}, resync: time.Minute},
		"readme-example.yaml":        {cidrs: []string{"10.0.0.0/8"}, resync: time.Minute},
		// Two keys in another case, two YAML 1.1 booleans, an unknown key.
		"sloppy.yaml": {cidrs: []string{"10.0.0.0/8"}, masqLinkLocal: true, resync: time.Minute, warnings: 5},
	}
	s := samples(t)
	for name, data := range s {
		w, ok := wants[filepath.Base(name)]
		if !ok {
			t.Errorf("%s: a sample without the settings it should parse to", name)
			continue
		}
		cfg, err := Parse(name, data, Options{EnableIPv6: true})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := &Config{NonMasqueradeCIDRs: prefixes(w.cidrs...), MasqLinkLocal: w.masqLinkLocal, MasqLinkLocalIPv6: w.masqLinkLocalIPv6,
			ResyncInterval: w.resync, CIDRLimit: w.cidrLimit}
		if !cfg.Equal(want) || len(cfg.MasqueradeCIDRs) != 0 || len(cfg.MasqueradeSourceCIDRs) != 0 {
			t.Errorf("%s:\n got %s\nwant %s", name, cfg.Summary(), want.Summary())
		}
		if ws := cfg.Warnings(); len(ws) != w.warnings {
			t.Errorf("%s: %d warnings, want %d: %v", name, len(ws), w.warnings, ws)
		}
	}
	for name := range wants {
		if _, ok := s[filepath.Join("testdata", name)]; !ok {
			t.Errorf("no sample testdata/%s", name)
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
		ws := cfg.Warnings()
		for _, w := range ws {
			if w.File != "fuzz" || w.Message == "" || w.Fix == "" || w.Line < 0 || w.Column < 0 || len(w.Field) > maxShown+len("…") {
				t.Fatalf("bad warning %+v", w)
			}
		}
		// --strict refuses exactly the configs with warnings.
		strict := opts
		strict.Strict = true
		if _, err := Parse("fuzz", data, strict); (err != nil) != (len(ws) > 0) {
			t.Fatalf("strict: %v, with %d warnings", err, len(ws))
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
		if slices.ContainsFunc(cfg.MasqueradeCIDRs, func(p netip.Prefix) bool { return slices.Contains(cfg.NonMasqueradeCIDRs, p) }) {
			return // The defaults and an exception to them: one file cannot write both lists.
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
