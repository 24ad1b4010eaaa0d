package nft

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/config"
)

// TestExplainMatchesTrace: on random nested configs, local routes and
// queried prefixes, Explain's answers cover the prefix exactly, in order,
// each maximal; at every boundary address, the answer holding it says what
// Trace and containing say for that address.
func TestExplainMatchesTrace(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 300 {
		v6 := round%2 == 0
		cfg, opts := randomExceptions(rng, v6)
		if round%3 == 0 { // without masqueradeCIDRs: the set and From
			cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, cfg.MasqueradeCIDRs...)
			cfg.MasqueradeCIDRs = nil
		}
		rs := Build(cfg, opts)
		pick := func() netip.Prefix {
			all := append(append([]netip.Prefix{}, cfg.NonMasqueradeCIDRs...), cfg.MasqueradeCIDRs...)
			a := all[rng.IntN(len(all))].Addr()
			return netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked()
		}
		local := []netip.Prefix{pick(), pick()}
		q := Query{Dst: pick(), Local: local}
		as := Explain(cfg, opts, rs, q)
		whole := IntervalOf(q.Dst)
		if len(as) == 0 || as[0].Dst.First != whole.First || as[len(as)-1].Dst.Last != whole.Last {
			t.Fatalf("round %d: answers for %s do not cover it: %+v", round, q.Dst, as)
		}
		for i, a := range as {
			if i > 0 && (as[i-1].Dst.Last.Next() != a.Dst.First || as[i-1].sameVerdict(a)) {
				t.Fatalf("round %d: answers %d and %d are not adjacent and different: %+v, %+v", round, i-1, i, as[i-1], a)
			}
			probes := []netip.Addr{a.Dst.First, a.Dst.Last}
			for _, e := range entries(cfg, opts, addrFamily(a.Dst.First)) {
				probes = append(probes, e.Prefix.Addr(), lastAddr(e.Prefix))
			}
			for _, p := range probes {
				if a.Dst.Contains(p) {
					checkAnswer(t, cfg, opts, rs, q, a, p)
				}
			}
		}
	}
}

// checkAnswer fails unless answer a says for address p what Trace and
// containing say.
func checkAnswer(t *testing.T, cfg *config.Config, opts Options, rs *Ruleset, q Query, a Answer, p netip.Addr) {
	t.Helper()
	local := slices.ContainsFunc(q.Local, func(l netip.Prefix) bool { return l.Contains(p) })
	if v := rs.Trace(Packet{Dst: p, Local: local}); v != a.Verdict || local != a.Local {
		t.Fatalf("%s in %s: answer %+v, Trace %+v (local %t)", p, a.Dst, a, v, local)
	}
	if !a.ByEntry {
		for _, e := range a.From {
			if e.Kind != NonMasqueradeEntry || !IntervalOf(e.Prefix).Contains(a.Dst.First) && !a.Dst.Contains(e.Prefix.Addr()) {
				t.Fatalf("%s: From holds %+v, which is not a nonMasqueradeCIDRs entry overlapping %s", p, e, a.Dst)
			}
		}
		return
	}
	in := containing(cfg, opts, p)
	if len(in) == 0 && a.Entry.Prefix.IsValid() || len(in) > 0 && in[0] != a.Entry {
		t.Fatalf("%s: answer decided by %+v; containing says %+v", p, a.Entry, in)
	}
}

// TestExplainSourcesAgreeWithWarning: Explain and the config's warning ask
// the same question, so when the warning says no IPv6 traffic is
// masqueraded, no IPv6 destination is, and otherwise some is.
func TestExplainSourcesAgreeWithWarning(t *testing.T) {
	for _, tc := range []struct {
		body string
		warn bool
	}{
		{"masqueradeSourceCIDRs: [10.244.0.0/16]\n", true},
		{"masqueradeSourceCIDRs: [10.244.0.0/16, fd00:244::/64]\n", false},
		{"nonMasqueradeCIDRs: [10.0.0.0/8]\n", false},
	} {
		cfg, err := config.Parse("cfg", []byte(tc.body), config.Options{EnableIPv6: true})
		if err != nil {
			t.Fatal(err)
		}
		warned := slices.ContainsFunc(cfg.Warnings(), func(p config.Problem) bool {
			return strings.Contains(p.Message, "no IPv6 traffic is masqueraded")
		})
		opts := withOpts(func(o *Options) { o.EnableIPv6 = true })
		as := Explain(cfg, opts, Build(cfg, opts), Query{Dst: netip.MustParsePrefix("::/0")})
		masq := slices.ContainsFunc(as, func(a Answer) bool { return a.Verdict.Masquerade })
		if warned != tc.warn || masq == warned {
			t.Errorf("%q: warning %t (want %t), some IPv6 destination masqueraded %t: %+v", tc.body, warned, tc.warn, masq, as)
		}
	}
}

// TestExplainUniform: a prefix inside one set element is one answer, with
// every entry behind it.
func TestExplainUniform(t *testing.T) {
	cfg := &config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "10.1.0.0/16")}
	opts := withOpts(func(*Options) {})
	as := Explain(cfg, opts, Build(cfg, opts), Query{Dst: netip.MustParsePrefix("10.0.0.0/8")})
	if len(as) != 1 || as[0].Verdict.Masquerade || len(as[0].From) != 2 || as[0].From[0].Prefix != prefixes("10.0.0.0/8")[0] {
		t.Errorf("got %+v; want one answer, not masqueraded, from 10.0.0.0/8 and 10.1.0.0/16", as)
	}
}
