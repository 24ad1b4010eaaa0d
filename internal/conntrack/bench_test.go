package conntrack

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
)

// benchCIDRs and benchEntries are the scale: 100,000 CIDRs in the
// list and 10,000 live conntrack entries.
const (
	benchCIDRs   = 100_000
	benchEntries = 10_000
	// benchMoved entries go to the one CIDR that changes.
	benchMoved = 10
)

// spaced returns n IPv4 /24s with a gap after each, so none merge.
func spaced(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		v := uint32(0x10000000) + uint32(i)*512
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
	}
	return out
}

// benchFlows are benchEntries UDP entries from a pod: benchMoved to the
// first CIDR, the rest spread over the others.
func benchFlows(cidrs []netip.Prefix) []ct.Flow {
	src := netip.MustParseAddr("10.244.1.2")
	flows := make([]ct.Flow, benchEntries)
	for i := range flows {
		c := cidrs[0]
		if i >= benchMoved {
			c = cidrs[1+i%(len(cidrs)-1)]
		}
		flows[i] = ct.NewFlow(unix.IPPROTO_UDP, 0, src, c.Addr().Next(), uint16(10000+i), 53, 600, 0)
	}
	return flows
}

func dialIn(b *testing.B, ns string) *ct.Conn {
	f, err := os.Open(netnstest.Path(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	c, err := ct.Dial(&netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func create(b *testing.B, c *ct.Conn, flows []ct.Flow) {
	for _, f := range flows {
		if err := c.Create(f); err != nil {
			b.Fatalf("create conntrack entry %s: %v", f.TupleOrig, err)
		}
	}
}

// BenchmarkReconcile: at 100,000 CIDRs and 10,000 live entries, one CIDR
// leaves the list; each run removes the benchMoved entries to it (they are
// put back between runs, off the clock).
func BenchmarkReconcile(b *testing.B) {
	ns := netnstest.New(b, "masqd-ctbench")
	cidrs := spaced(benchCIDRs)
	before := nft.Build(&config.Config{NonMasqueradeCIDRs: cidrs}, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	after := nft.Build(&config.Config{NonMasqueradeCIDRs: cidrs[1:]}, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	flows := benchFlows(cidrs)
	c := dialIn(b, ns)
	create(b, c, flows)
	rc, err := Open(netnstest.Path(ns), UDP)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime(b)
		res, err := rc.Reconcile(context.Background(), before, after)
		cpu += cpuTime(b) - c0
		if err != nil || res.Removed["udp"] != benchMoved || res.Examined != benchEntries {
			b.Fatalf("reconcile: examined %d, removed %v, err %v; want %d examined, udp:%d", res.Examined, res.Removed, err, benchEntries, benchMoved)
		}
		b.StopTimer()
		create(b, c, flows[:benchMoved])
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the process used so far, user and system (the
// kernel's half of a dump counts as system time): on a busy machine it
// says more about a run's cost than wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReconcileNoChange: a resync that changes nothing, at the same
// scale, does no conntrack work.
func BenchmarkReconcileNoChange(b *testing.B) {
	ns := netnstest.New(b, "masqd-ctbench")
	cidrs := spaced(benchCIDRs)
	rs := nft.Build(&config.Config{NonMasqueradeCIDRs: cidrs}, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	same := nft.Build(&config.Config{NonMasqueradeCIDRs: cidrs}, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	create(b, dialIn(b, ns), benchFlows(cidrs))
	rc, err := Open(netnstest.Path(ns), UDP)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime(b)
		res, err := rc.Reconcile(context.Background(), rs, same)
		cpu += cpuTime(b) - c0
		if err != nil || res.Examined != 0 || res.Total() != 0 {
			b.Fatalf("no-change reconcile: examined %d, removed %v, err %v; want no conntrack work", res.Examined, res.Removed, err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}
