package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/config"
)

// changeString renders changes as "range was>now" (m: masqueraded, -: not),
// one after the other.
func changeString(cs []Change) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %s>%s", c.Interval, mark(c.WasMasq), mark(c.NowMasq))
	}
	return b.String()
}

func mark(masq bool) string {
	if masq {
		return "m"
	}
	return "-"
}

func TestChanges(t *testing.T) {
	v6 := withOpts(func(o *Options) { o.EnableIPv6 = true })
	def := ipMasqAgentDefaults()
	cases := []struct {
		name          string
		before, after config.Config
		bOpts, aOpts  Options
		want          string
	}{
		{"same config", config.Config{NonMasqueradeCIDRs: rfc1918}, config.Config{NonMasqueradeCIDRs: rfc1918}, def, def, ""},
		{"only the resync interval", config.Config{NonMasqueradeCIDRs: rfc1918}, config.Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}, def, def, ""},
		{"a range is masqueraded now", config.Config{NonMasqueradeCIDRs: rfc1918}, config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "172.16.0.0/12")}, def, def,
			"192.168.0.0/16 ->m"},
		{"a range is exempt now", config.Config{NonMasqueradeCIDRs: rfc1918}, config.Config{NonMasqueradeCIDRs: append(prefixes("203.0.113.0/24"), rfc1918...)}, def, def,
			"203.0.113.0/24 m>-"},
		{"merged neighbours: only the new part", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")}, config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/7")}, def, def,
			"11.0.0.0/8 m>-"},
		{"both directions at once", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")}, config.Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24")}, def, def,
			"10.0.0.0/8 ->m 192.0.2.0/24 m>-"},
		{"nested inside an exempt range: nothing", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")}, config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "10.1.0.0/16")}, def, def,
			""},
		{"link-local masqueraded", config.Config{}, config.Config{MasqLinkLocal: true}, def, def,
			"169.254.0.0/16 ->m"},
		{"link-local inside the list too", config.Config{NonMasqueradeCIDRs: prefixes("169.254.0.0/16")}, config.Config{NonMasqueradeCIDRs: prefixes("169.254.0.0/16"), MasqLinkLocal: true}, def, def,
			""},
		{"an exception inside link-local", config.Config{}, config.Config{MasqueradeCIDRs: prefixes("169.254.169.254/32")}, def, def,
			"169.254.169.254 ->m"},
		{"an exception inside a list entry", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")},
			config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8"), MasqueradeCIDRs: prefixes("10.9.0.0/16")}, def, def,
			"10.9.0.0/16 ->m"},
		{"source scoping: every masqueraded destination", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8"), MasqueradeSourceCIDRs: prefixes("10.1.0.0/16")},
			config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8"), MasqueradeSourceCIDRs: prefixes("10.2.0.0/16")}, def, def,
			"0.0.0.0-9.255.255.255 m>m 11.0.0.0-169.253.255.255 m>m 169.255.0.0-255.255.255.255 m>m"},
		{"source scoping introduced", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")},
			config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8"), MasqueradeSourceCIDRs: prefixes("10.2.0.0/16")}, def, def,
			"0.0.0.0-9.255.255.255 m>m 11.0.0.0-169.253.255.255 m>m 169.255.0.0-255.255.255.255 m>m"},
		{"snat address", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")}, config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8")},
			withOpts(func(o *Options) { o.SNATv4 = netip.MustParseAddr("192.0.2.1") }), withOpts(func(o *Options) { o.SNATv4 = netip.MustParseAddr("192.0.2.2") }),
			"0.0.0.0-9.255.255.255 m>m 11.0.0.0-169.253.255.255 m>m 169.255.0.0-255.255.255.255 m>m"},
		{"fully-random alone changes no translation", config.Config{}, config.Config{},
			def, withOpts(func(o *Options) { o.RandomFully = false }), ""},
		{"ipv6 enabled", config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, def, v6,
			"::-fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ->m fe00::/9 ->m fec0::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ->m"},
		{"ipv6 range masqueraded now", config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8", "2001:db8::/32")}, config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, v6, v6,
			"2001:db8::/32 ->m"},
		{"ipv6 link-local masqueraded", config.Config{}, config.Config{MasqLinkLocalIPv6: true}, v6, v6,
			"fe80::/10 ->m"},
		{"ipv6 list ignored while ipv6 is off", config.Config{}, config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, def, def,
			""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := changeString(Changes(Build(&tc.before, tc.bOpts), Build(&tc.after, tc.aOpts)))
			if got != tc.want {
				t.Errorf("Changes:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestChangeStale(t *testing.T) {
	cases := []struct {
		c                    Change
		untranslated, transl bool
	}{
		{Change{WasMasq: false, NowMasq: true}, true, false},
		{Change{WasMasq: true, NowMasq: false}, false, true},
		{Change{WasMasq: true, NowMasq: true}, true, true},
	}
	for _, tc := range cases {
		if got := tc.c.Stale(false); got != tc.untranslated {
			t.Errorf("%+v Stale(untranslated) = %v, want %v", tc.c, got, tc.untranslated)
		}
		if got := tc.c.Stale(true); got != tc.transl {
			t.Errorf("%+v Stale(translated) = %v, want %v", tc.c, got, tc.transl)
		}
	}
}

// TestChangesCoverTrace checks Changes against the tracer on random configs:
// every packet whose verdict differs between two rulesets goes to a
// destination inside a reported range, and the range says which entries
// can be stale.
func TestChangesCoverTrace(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 0))
	// A small universe of prefixes, nested and adjacent, so that random
	// configs overlap a lot.
	universe := prefixes("10.0.0.0/8", "10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/23", "11.0.0.0/8", "169.254.0.0/16",
		"169.254.169.254/32", "192.0.2.0/24", "192.0.2.128/25", "0.0.0.0/1",
		"fd00::/8", "fd00::/64", "fd00:0:0:1::/64", "2001:db8::/32", "fe80::/10", "fe80::1/128")
	pick := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for range r.IntN(n + 1) {
			out = append(out, universe[r.IntN(len(universe))])
		}
		return out
	}
	randomRuleset := func() *Ruleset {
		cfg := config.Config{
			NonMasqueradeCIDRs: pick(5), MasqueradeCIDRs: pick(2),
			MasqLinkLocal: r.IntN(2) == 0, MasqLinkLocalIPv6: r.IntN(2) == 0,
		}
		if r.IntN(3) == 0 {
			cfg.MasqueradeSourceCIDRs = prefixes([]string{"10.0.1.0/24", "10.0.0.0/8", "fd00::/64"}[r.IntN(3)])
		}
		opts := withOpts(func(o *Options) { o.EnableIPv6 = r.IntN(4) != 0 })
		if r.IntN(4) == 0 {
			opts.SNATv4 = netip.MustParseAddr([]string{"192.0.2.1", "192.0.2.2"}[r.IntN(2)])
		}
		return Build(&cfg, opts)
	}
	// Probe addresses: every universe prefix's edges and neighbours.
	var probes []netip.Addr
	for _, p := range universe {
		iv := IntervalOf(p)
		probes = append(probes, iv.First, iv.Last, iv.First.Prev(), iv.Last.Next())
	}
	sources := []netip.Addr{{}, netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.3.0.1"), netip.MustParseAddr("fd00::5"), netip.MustParseAddr("fd00:0:0:2::5")}
	for round := range 300 {
		before, after := randomRuleset(), randomRuleset()
		cs := Changes(before, after)
		for _, dst := range probes {
			if !dst.IsValid() {
				continue
			}
			for _, src := range sources {
				if src.IsValid() && src.Is4() != dst.Is4() {
					continue
				}
				{
					p := Packet{Dst: dst, Src: src}
					vb, va := before.Trace(p), after.Trace(p)
					if vb.Masquerade == va.Masquerade && vb.SNAT == va.SNAT {
						continue
					}
					i := findChange(cs, dst)
					if i < 0 {
						t.Fatalf("round %d: %+v: verdict %+v became %+v, but no change covers %s; changes: %s\nbefore:\n%s\nafter:\n%s",
							round, p, vb, va, dst, changeString(cs), before, after)
					}
					if (vb.Masquerade && !cs[i].WasMasq) || (va.Masquerade && !cs[i].NowMasq) {
						t.Fatalf("round %d: %+v: verdict %+v became %+v, but the change says %s", round, p, vb, va, changeString(cs[i:i+1]))
					}
				}
			}
		}
	}
}

func findChange(cs []Change, a netip.Addr) int {
	for i, c := range cs {
		if c.Contains(a) {
			return i
		}
	}
	return -1
}

// BenchmarkChanges is the pure half of a reconcile at 100,000 CIDRs: one
// CIDR removed from the list.
func BenchmarkChanges(b *testing.B) {
	cidrs := spacedPrefixes(100_000)
	before := Build(&config.Config{NonMasqueradeCIDRs: cidrs}, ipMasqAgentDefaults())
	after := Build(&config.Config{NonMasqueradeCIDRs: cidrs[1:]}, ipMasqAgentDefaults())
	b.ResetTimer()
	for b.Loop() {
		if cs := Changes(before, after); len(cs) != 1 {
			b.Fatalf("%d changes, want 1", len(cs))
		}
	}
}

// spacedPrefixes returns n IPv4 /24s with a gap after each, so none merge.
func spacedPrefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		v := uint32(0x10000000) + uint32(i)*512
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
	}
	return out
}
