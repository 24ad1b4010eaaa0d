package nft

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// FuzzParseBuild feeds arbitrary config text through parse, validate and
// build: no panic, and at both ends of every prefix a valid config lists,
// the ruleset decides as its most specific entry says (without
// masqueradeCIDRs: every nonMasqueradeCIDRs address is not masqueraded).
//
// The seeds are the config package's real-world samples (README, GKE, EKS,
// AKS, kops and Rancher bodies), the ways files get mangled, and lists that
// stress the merge: overlaps, adjacent ranges, duplicates, the link-local
// ranges listed while masqLinkLocal is set, everything, and exceptions.
func FuzzParseBuild(f *testing.F) {
	samples, err := filepath.Glob("../config/testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range samples {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data), true)
		f.Add(string(data), false)
	}
	var hosts strings.Builder
	hosts.WriteString("nonMasqueradeCIDRs:\n")
	for i := range 64 {
		fmt.Fprintf(&hosts, "  - 10.%d.%d.%d/32\n", i>>7, i>>1&63, i&1*128)
	}
	for _, seed := range []string{
		"nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 11.0.0.0/8]\nmasqLinkLocal: true\n",
		`{"nonMasqueradeCIDRs": ["0.0.0.0/0", "fd00::/8"], "masqLinkLocalIPv6": true, "resyncInterval": "1s"}`,
		"nonMasqueradeCIDRs: []\n",
		"",
		"nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs: [10.20.0.0/16, 169.254.169.254/32]\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n",
		"\ufeffnonMasqueradeCIDRs:\r\n  - 192.0.2.0/24\r\n  - 2001:db8::/32\r\nmasqLinkLocalIPv6: true\r\n",
		"nonMasqueradeCIDRs: &n [198.51.100.0/25, 198.51.100.128/25]\nmasqLinkLocal: &t true\nmasqLinkLocalIPv6: *t\n",
		"nonMasqueradeCIDRs: [169.254.0.0/16, fe80::/10, 169.254.169.254/32]\nmasqLinkLocal: true\nmasqLinkLocalIPv6: true\n",
		"nonMasqueradeCIDRs: [0.0.0.0/1, 128.0.0.0/1, ::/1, 8000::/1]\n",
		"nonMasqueradeCIDRs: [0.0.0.0/32, 255.255.255.255/32, ::/128, ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128]\n",
		"nonMasqueradeCIDRs: [10.0.0.0/8, 10.0.0.0/8, 10.0.0.0/8, 10.255.255.255/32]\ncidrLimit: 4\n",
		"nonMasqueradeCIDRs: [203.0.113.0/24, 203.0.114.0/24, 203.0.112.0/24, 203.0.115.0/24]\n",
		"nonMasqueradeCIDRs:\n\t- 10.0.0.0/8\n",
		"masqLinkLocal: true\nmasqLinkLocal: false\n",
		"NonMasqueradeCIDRs: [10.0.0.0/8]\n",
		hosts.String(),
	} {
		f.Add(seed, true)
		f.Add(seed, false)
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
				in := containing(cfg, opts, addr)
				if v := rs.lookup(addr); v.Masquerade != in[0].Masquerade {
					t.Fatalf("%s (in %s) masqueraded %t by rule %q, but %+v decides", addr, p, v.Masquerade, v.Comment, in[0])
				}
			}
		}
	})
}
