package nft

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/config"
)

var faultRounds = flag.Int("fault-rounds", 40, "rounds of TestSyncFaultSchedule")

// fault is an error injected at the commit of a batch, before it reaches
// the kernel or after the kernel applied it (an ENOBUFS on the ack).
type fault struct {
	err   unix.Errno
	after bool
}

func (f fault) String() string {
	if f.after {
		return f.err.Error() + " after commit"
	}
	return f.err.Error() + " before commit"
}

// The faults netlink gives masqd in the field: a busy commit mutex, a
// full socket buffer after the batch was applied, a missing capability.
var faults = []fault{{unix.EBUSY, false}, {unix.ENOBUFS, true}, {unix.ENOBUFS, false}, {unix.EPERM, false}}

// inject makes c's next commit fail with f; later commits go through.
func inject(c *Conn, f fault) {
	c.commit = func(nc *nftables.Conn) error {
		c.commit = (*nftables.Conn).Flush
		if f.after {
			if err := nc.Flush(); err != nil {
				return err
			}
		}
		return f.err
	}
}

// checkKernel fails unless the kernel holds exactly rs: the listing, and
// every set's intervals counted one by one, so a duplicate or a leftover
// element cannot hide.
func checkKernel(t *testing.T, ns string, c *Conn, rs *Ruleset) {
	t.Helper()
	sets := kernelSets(t, c, rs.Table)
	for _, s := range rs.Sets {
		if got := sets[s.Name]; !slices.Equal(got, s.Intervals) {
			t.Fatalf("set %s: kernel holds %d intervals, want %d", s.Name, len(got), len(s.Intervals))
		}
	}
	if len(sets) != len(rs.Sets) {
		t.Fatalf("kernel holds %d sets, want %d", len(sets), len(rs.Sets))
	}
	if got := canonical(nftIn(t, ns, "", "list", "table", "inet", rs.Table)); got != rs.String() {
		t.Fatalf("kernel table differs from the ruleset")
	}
}

// TestSyncFaults injects each fault into each kind of change: the failed
// sync reports the error, the Conn trusts nothing it cached, and the retry
// re-reads the table and converges; after a fault that followed the commit
// it finds nothing left to do, so no element is sent twice.
func TestSyncFaults(t *testing.T) {
	base := &config.Config{NonMasqueradeCIDRs: randomPrefixes(rand.New(rand.NewPCG(1, 1)), 2000)}
	changed := &config.Config{NonMasqueradeCIDRs: append(slices.Clone(base.NonMasqueradeCIDRs[100:]), prefixes("192.0.2.0/24")...)}
	extended := &config.Config{NonMasqueradeCIDRs: base.NonMasqueradeCIDRs, MasqueradeCIDRs: prefixes("10.20.0.0/16"),
		MasqueradeSourceCIDRs: prefixes("10.244.0.0/16")}
	opts := ipMasqAgentDefaults()
	transitions := []struct {
		name     string
		from, to *Ruleset
	}{
		{"create", nil, Build(base, opts)},
		{"element delta", Build(base, opts), Build(changed, opts)},
		{"sets and rules in place", Build(base, opts), Build(extended, withOpts(func(o *Options) { o.SNATv4 = netip.MustParseAddr("192.0.2.1") }))},
		{"replace a foreign schema", Build(base, opts), Build(base, withOpts(func(o *Options) { o.Chain = "other" }))},
	}
	for _, tr := range transitions {
		for _, f := range faults {
			t.Run(tr.name+"/"+f.String(), func(t *testing.T) {
				t.Parallel()
				ns, c := netns(t)
				if tr.from != nil {
					mustSync(t, c, tr.from)
				}
				inject(c, f)
				_, err := c.Sync(context.Background(), tr.to)
				if !errors.Is(err, f.err) {
					t.Fatalf("faulted sync: %v, want %v", err, f.err)
				}
				res := mustSync(t, c, tr.to)
				if res.Cached {
					t.Errorf("the retry trusted the cache: %+v", res)
				}
				if f.after && res.Op != OpNone {
					t.Errorf("the retry after a committed batch sent %+v, want nothing", res)
				}
				if !f.after && res.Op == OpNone {
					t.Errorf("the retry after a batch that never reached the kernel sent nothing")
				}
				checkKernel(t, ns, c, tr.to)
			})
		}
	}
}

// TestSyncFaultSchedule walks random configs with a random fault at a
// random commit, retrying each failed sync as the agent does, and checks
// after every step that the kernel holds exactly the wanted ruleset.
// -fault-rounds sets the number of steps.
func TestSyncFaultSchedule(t *testing.T) {
	ns, c := netns(t)
	rng := rand.New(rand.NewPCG(6, 6))
	injected := map[string]int{}
	for round := range *faultRounds {
		cfg := &config.Config{NonMasqueradeCIDRs: randomPrefixes(rng, 1+rng.IntN(3000))}
		opts := ipMasqAgentDefaults()
		if rng.IntN(3) == 0 {
			cfg.MasqueradeCIDRs = prefixes("10.20.0.0/16")
			cfg.MasqueradeSourceCIDRs = prefixes("10.244.0.0/16", "fd00::/64")
			opts.EnableIPv6 = true
		}
		rs := Build(cfg, opts)
		var f *fault
		if rng.IntN(4) != 0 {
			f = &faults[rng.IntN(len(faults))]
			inject(c, *f)
		}
		var err error
		for try := 0; try < 3; try++ {
			if _, err = c.Sync(context.Background(), rs); err == nil {
				break
			}
			if f == nil || !errors.Is(err, f.err) {
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
			injected[f.String()]++
		}
		if err != nil {
			t.Fatalf("round %d: no convergence: %v", round, err)
		}
		checkKernel(t, ns, c, rs)
	}
	t.Logf("%d rounds, faults injected and survived: %v", *faultRounds, injected)
}

// randomPrefixes returns n IPv4 prefixes spread over 11.0.0.0/8, of random
// lengths, so that they nest, touch and overlap.
func randomPrefixes(rng *rand.Rand, n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{11, byte(rng.UintN(256)), byte(rng.UintN(256)), byte(rng.UintN(256))})
		out[i] = netip.PrefixFrom(a, 16+rng.IntN(17)).Masked()
	}
	return out
}
