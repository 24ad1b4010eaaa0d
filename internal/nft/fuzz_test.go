package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// FuzzParseBuild feeds arbitrary config text through parse, validate and
// build: no panic, and at both ends of every prefix a valid config lists,
// the ruleset decides as its most specific entry says (without
// masqueradeCIDRs: every nonMasqueradeCIDRs address is not masqueraded).
func FuzzParseBuild(f *testing.F) {
	for _, seed := range []string{
		"nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 11.0.0.0/8]\nmasqLinkLocal: true\n",
		`{"nonMasqueradeCIDRs": ["0.0.0.0/0", "fd00::/8"], "masqLinkLocalIPv6": true, "resyncInterval": "1s"}`,
		"nonMasqueradeCIDRs: []\n",
		"",
		"nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs: [10.20.0.0/16, 169.254.169.254/32]\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n",
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, text string, ipv6 bool) {
		cfg, err := config.Parse("fuzz", []byte(text), config.Options{EnableIPv6: ipv6})
		if err != nil {
			return
		}
		opts := withOpts(func(o *Options) { o.EnableIPv6 = ipv6 })
		rs := Build(cfg, opts)
		if !strings.HasPrefix(rs.String(), "table inet masqd {") {
			t.Fatalf("render:\n%s", rs)
		}
		for _, p := range append(cfg.NonMasqueradeCIDRs, cfg.MasqueradeCIDRs...) {
			for _, addr := range []netip.Addr{p.Addr(), lastAddr(p)} {
				in := Containing(cfg, opts, addr)
				if v := rs.Lookup(addr); v.Masquerade != in[0].Masquerade {
					t.Fatalf("%s (in %s) masqueraded %t by rule %q, but %+v decides", addr, p, v.Masquerade, v.Comment, in[0])
				}
			}
		}
	})
}
