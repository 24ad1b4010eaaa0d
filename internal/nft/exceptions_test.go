package nft

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// TestExceptionsTrace walks packets through rulesets that use masqd's own
// settings and checks the verdicts an operator would expect.
func TestExceptionsTrace(t *testing.T) {
	cfg := &config.Config{
		NonMasqueradeCIDRs:    prefixes("10.0.0.0/8", "10.20.30.0/24", "10.20.30.128/25", "fd00::/8"),
		MasqueradeCIDRs:       prefixes("10.20.0.0/16", "10.20.30.128/26", "169.254.169.254/32", "fd00:1::/32"),
		MasqueradeSourceCIDRs: prefixes("10.244.0.0/16", "fd00:244::/64"),
	}
	opts := withOpts(func(o *Options) { o.EnableIPv6, o.SNATv4 = true, netip.MustParseAddr("192.0.2.10") })
	rs := Build(cfg, opts)
	pod4, pod6 := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("fd00:244::2")
	host := netip.MustParseAddr("100.115.0.1")
	tests := []struct {
		src, dst string
		masq     bool
		snat     string
	}{
		{"", "10.1.2.3", false, ""},              // exempt by 10.0.0.0/8
		{"", "10.20.1.1", true, "192.0.2.10"},    // the exception 10.20.0.0/16
		{"", "10.20.30.1", false, ""},            // exempt again inside it
		{"", "10.20.30.130", true, "192.0.2.10"}, // an exception three levels deep
		{"", "10.20.30.200", false, ""},          // 10.20.30.128/25, outside the /26
		{"", "169.254.169.254", true, "192.0.2.10"},
		{"", "169.254.1.1", false, ""}, // link-local stays exempt around the hole
		{"", "8.8.8.8", true, "192.0.2.10"},
		{"", "fd00::1", false, ""},
		{"", "fd00:1::1", true, ""}, // IPv6 masquerades (no --snat-address-ipv6)
		{"", "fe80::1", false, ""},
		{host.String(), "8.8.8.8", false, ""}, // not a pod source
		{pod4.String(), "8.8.8.8", true, "192.0.2.10"},
		{pod6.String(), "2001:db8::1", true, ""},
		{"fd00:99::1", "2001:db8::1", false, ""},
	}
	for _, tt := range tests {
		p := Packet{Dst: netip.MustParseAddr(tt.dst)}
		if tt.src != "" {
			p.Src = netip.MustParseAddr(tt.src)
		}
		v := rs.Trace(p)
		var snat string
		if v.SNAT.IsValid() {
			snat = v.SNAT.String()
		}
		if v.Masquerade != tt.masq || snat != tt.snat {
			t.Errorf("%s → %s: masquerade %t snat %q (rule %d %q), want %t %q", tt.src, tt.dst, v.Masquerade, snat, v.Rule, v.Comment, tt.masq, tt.snat)
		}
	}
}

// TestExemptMatchesContaining checks the sweep against its specification, the
// most specific entry, on random nested prefixes and every boundary address.
func TestExemptMatchesContaining(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for round := range 300 {
		cfg, opts := randomExceptions(rng, round%2 == 0)
		for _, fam := range []Family{IPv4, IPv6} {
			es := entries(cfg, opts, fam)
			ivs := exempt(spans(cfg, opts, fam))
			checkIntervals(t, ivs)
			var probes []netip.Addr
			for _, e := range es {
				first := e.Prefix.Addr()
				last := lastAddr(e.Prefix)
				probes = append(probes, first, last, first.Prev(), last.Next())
			}
			for _, a := range probes {
				if !a.IsValid() {
					continue
				}
				in := containing(cfg, opts, a)
				want := len(in) > 0 && !in[0].Masquerade
				if _, got := find(ivs, a); got != want {
					t.Fatalf("round %d: %s exempt %t, want %t (containing %+v)\nentries %v\nintervals %v", round, a, got, want, in, es, ivs)
				}
			}
		}
	}
}

// checkIntervals fails unless ivs are sorted, disjoint and not adjacent.
func checkIntervals(t *testing.T, ivs []Interval) {
	t.Helper()
	for i, iv := range ivs {
		if iv.First.Compare(iv.Last) > 0 {
			t.Fatalf("interval %s is reversed", iv)
		}
		if i > 0 && ivs[i-1].Last.Next().Compare(iv.First) >= 0 {
			t.Fatalf("intervals %s and %s overlap or touch", ivs[i-1], iv)
		}
	}
}

// randomExceptions nests prefixes around a few anchors, so that exceptions
// and exemptions sit inside each other several levels deep, with /0, host
// routes and all-ones ends among them.
func randomExceptions(rng *rand.Rand, v6 bool) (*config.Config, Options) {
	cfg := &config.Config{MasqLinkLocal: rng.IntN(2) == 0, MasqLinkLocalIPv6: rng.IntN(2) == 0}
	anchors := []netip.Addr{
		netip.AddrFrom4([4]byte{10, 20, 30, 40}), netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		netip.AddrFrom4([4]byte{169, 254, 169, 254}), netip.AddrFrom4([4]byte{0, 0, 0, 0}),
		netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), 0, 0}),
	}
	if v6 {
		anchors = append(anchors, netip.MustParseAddr("fd00::1"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
			netip.MustParseAddr("fe80::1"))
	}
	for range 2 + rng.IntN(12) {
		a := anchors[rng.IntN(len(anchors))]
		p := netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked()
		if rng.IntN(2) == 0 {
			cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, p)
		} else {
			cfg.MasqueradeCIDRs = append(cfg.MasqueradeCIDRs, p)
		}
	}
	return cfg, withOpts(func(o *Options) { o.EnableIPv6 = v6 })
}

// FuzzExempt checks the sweep against containing on fuzzed prefixes.
func FuzzExempt(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0, 8, 0, 10, 20, 0, 0, 16, 1, 10, 20, 30, 0, 24, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 255, 255, 255, 255, 32, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &config.Config{MasqLinkLocal: true}
		for ; len(data) >= 6; data = data[6:] {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte(data[:4])), int(data[4])%33).Masked()
			if data[5]%2 == 0 {
				cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, p)
			} else {
				cfg.MasqueradeCIDRs = append(cfg.MasqueradeCIDRs, p)
			}
		}
		opts := ipMasqAgentDefaults()
		es := entries(cfg, opts, IPv4)
		ivs := exempt(spans(cfg, opts, IPv4))
		checkIntervals(t, ivs)
		for _, e := range es {
			for _, a := range []netip.Addr{e.Prefix.Addr(), lastAddr(e.Prefix), e.Prefix.Addr().Prev(), lastAddr(e.Prefix).Next()} {
				if !a.IsValid() {
					continue
				}
				in := containing(cfg, opts, a)
				if _, got := find(ivs, a); got != (len(in) > 0 && !in[0].Masquerade) {
					t.Fatalf("%s exempt %t, containing %+v", a, got, in)
				}
			}
		}
	})
}

// BenchmarkBuildExceptions builds the ruleset for 100,000 exempt prefixes
// with 10,000 exceptions inside them, against the same list without.
func BenchmarkBuildExceptions(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	exempt := randomPrefixes(rng, 100_000)
	masq := make([]netip.Prefix, 10_000)
	for i := range masq {
		p := exempt[rng.IntN(len(exempt))]
		masq[i] = netip.PrefixFrom(p.Addr(), min(p.Bits()+1+rng.IntN(6), 32)).Masked()
	}
	for _, bc := range []struct {
		name string
		cfg  *config.Config
	}{
		{"plain", &config.Config{NonMasqueradeCIDRs: exempt}},
		{"exceptions", &config.Config{NonMasqueradeCIDRs: exempt, MasqueradeCIDRs: masq}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				Build(bc.cfg, ipMasqAgentDefaults())
			}
		})
	}
}
