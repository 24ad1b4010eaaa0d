package nft

import (
	"flag"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

var diffRounds = flag.Int("diff-rounds", 1, "rounds of the kernel differential test (each a new random config)")

// TestKernelDifferential syncs random IPv4 and IPv6 prefixes (nested,
// adjacent, /0, host routes, the all-ones end, exceptions carved out of
// them and exemptions inside those) and asks the kernel's set,
// through `nft get element`, about random and edge addresses; its answer
// must equal the pure Ruleset lookup. The seed is fixed; -diff-rounds runs
// more configs.
func TestKernelDifferential(t *testing.T) {
	ns, c := netns(t)
	r := rand.New(rand.NewPCG(2026, 11))
	for round := range *diffRounds {
		cfg := &config.Config{}
		for range 40 {
			cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, randPrefix(r, false), randPrefix(r, true))
		}
		if round%4 == 3 {
			cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, netip.MustParsePrefix("0.0.0.0/0"))
		}
		cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs,
			netip.MustParsePrefix("255.255.255.255/32"), netip.MustParsePrefix("ffff::/16"))
		// Exceptions inside the exempt prefixes, and exemptions inside
		// those: the set then holds ranges that are no prefix.
		for i := range 30 {
			outer := cfg.NonMasqueradeCIDRs[r.IntN(len(cfg.NonMasqueradeCIDRs))]
			inner := netip.PrefixFrom(outer.Addr(), min(outer.Bits()+1+r.IntN(8), outer.Addr().BitLen())).Masked()
			if i%3 == 2 {
				cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, netip.PrefixFrom(inner.Addr(), min(inner.Bits()+4, inner.Addr().BitLen())))
			}
			cfg.MasqueradeCIDRs = append(cfg.MasqueradeCIDRs, inner)
		}
		rs := Build(cfg, withOpts(func(o *Options) { o.EnableIPv6 = true }))
		mustSync(t, c, rs)

		var probes []netip.Addr
		for _, s := range rs.Sets {
			for _, iv := range s.Intervals {
				probes = append(probes, iv.First, iv.Last, iv.First.Prev(), iv.Last.Next())
			}
			for range 20 {
				probes = append(probes, randPrefix(r, s.Family == IPv6).Addr())
			}
		}
		t.Logf("round %d: %d intervals, %d probes", round, len(rs.Set(SetV4).Intervals)+len(rs.Set(SetV6).Intervals), len(probes))
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			set := SetV4
			if a.Is6() {
				set = SetV6
			}
			_, want := find(rs.Set(set).Intervals, a)
			got := exec.Command("ip", "netns", "exec", ns, "nft", "get", "element", "inet", "masqd", set, "{", a.String(), "}").Run() == nil
			if got != want {
				t.Errorf("round %d: %s: kernel says in set %v, Ruleset says %v", round, a, got, want)
			}
		}
	}
}

// randPrefix favours a small space so that prefixes nest and touch.
func randPrefix(r *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
		b[3] = byte(r.IntN(256))
		return netip.PrefixFrom(netip.AddrFrom16(b), 24+r.IntN(105)).Masked()
	}
	a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
	return netip.PrefixFrom(a, 14+r.IntN(19)).Masked()
}
