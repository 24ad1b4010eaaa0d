package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// FuzzParseBuild feeds arbitrary config text through parse, validate and
// build: no panic, and every address a valid config lists in
// nonMasqueradeCIDRs is not masqueraded by the built ruleset.
func FuzzParseBuild(f *testing.F) {
	for _, seed := range []string{
		"nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 11.0.0.0/8]\nmasqLinkLocal: true\n",
		`{"nonMasqueradeCIDRs": ["0.0.0.0/0", "fd00::/8"], "masqLinkLocalIPv6": true, "resyncInterval": "1s"}`,
		"nonMasqueradeCIDRs: []\n",
		"",
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, text string, ipv6 bool) {
		cfg, err := config.Parse("fuzz", []byte(text), config.Options{EnableIPv6: ipv6})
		if err != nil {
			return
		}
		rs := Build(cfg, withOpts(func(o *Options) { o.EnableIPv6 = ipv6 }))
		if !strings.HasPrefix(rs.String(), "table inet masqd {") {
			t.Fatalf("render:\n%s", rs)
		}
		for _, p := range cfg.NonMasqueradeCIDRs {
			for _, addr := range []netip.Addr{p.Addr(), lastAddr(p)} {
				if v := rs.Lookup(addr); v.Masquerade {
					t.Fatalf("%s in nonMasqueradeCIDRs %s is masqueraded by rule %q", addr, p, v.Comment)
				}
			}
		}
	})
}
