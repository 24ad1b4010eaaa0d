package nft

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"

	"github.com/masqd/masqd/internal/config"
)

// TestDumpLargeMessages keeps reading the kernel back linear: the kernel
// walks the set from its start for every dump message and sizes messages
// to the reader's receives, so a reader with page-sized receives pays about
// eight times the walks of one that lets the kernel fill its 32 KiB cap.
func TestDumpLargeMessages(t *testing.T) {
	ns, c := netns(t)
	const n = 20_000
	cfg := &config.Config{NonMasqueradeCIDRs: make([]netip.Prefix, 0, n)}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 15), byte(i >> 7), byte(i<<1) & 0xff})
		cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, netip.PrefixFrom(a, 32))
	}
	rs := Build(cfg, ipMasqAgentDefaults())
	mustSync(t, c, rs)
	// A start element written by nft makes no clean interval.
	nftIn(t, ns, "", "add", "element", "inet", "masqd", SetV6, "{ fd00::/8 }")

	set := &nftables.Set{Table: tableObj(rs.Table), Name: SetV4}
	got, st, err := dumpSet(c.nsFd(), set)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got.intervals, rs.Set(SetV4).Intervals, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) || got.dirty {
		t.Fatalf("dump of %d intervals differs from the ruleset's (dirty %v, %d intervals)", n, got.dirty, len(got.intervals))
	}
	page := os.Getpagesize()
	if st.MaxMessage <= 2*page {
		t.Errorf("largest dump message %d bytes, want more than two pages (%d): reads are page-sized again, and large dumps quadratic", st.MaxMessage, 2*page)
	}
	// 20,000 intervals take ~0.9 MB: page-sized messages need over 200.
	if limit := 60; st.Messages > limit {
		t.Errorf("dump took %d messages, want at most %d", st.Messages, limit)
	}
	t.Logf("%d intervals in %d messages, the largest %d bytes", n, st.Messages, st.MaxMessage)

	v6, _, err := dumpSet(c.nsFd(), &nftables.Set{Table: tableObj(rs.Table), Name: SetV6})
	if err != nil {
		t.Fatal(err)
	}
	want := []Interval{{First: netip.MustParseAddr("fd00::"), Last: netip.MustParseAddr("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}}
	if !cmp.Equal(v6.intervals, want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Errorf("IPv6 set: got %v, want %v", v6.intervals, want)
	}
}

func TestAppendElementsRejectsTruncated(t *testing.T) {
	// nfgenmsg, then an attribute claiming 64 bytes in 8.
	msg := []byte{2, 0, 0, 0, 64, 0, 3, 0x80, 0, 0, 0, 0}
	if _, err := appendElements(nil, msg); err == nil {
		t.Fatal("a truncated attribute decoded without error")
	}
}

// TestElementStreamMatchesParse feeds the streaming parser elements in the
// kernel's order and in others, in messages of random size, and compares
// it with sorting and parsing them all.
func TestElementStreamMatchesParse(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for range 2000 {
		var elems []element
		for range rng.IntN(10) {
			elems = append(elems, element{addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(16) * 16)}), end: rng.IntN(2) == 0})
		}
		if rng.IntN(4) > 0 {
			// Mostly the kernel's order: descending, an end before a
			// start at the same address.
			slices.SortFunc(elems, func(a, b element) int { return elementOrder(b, a) })
			elems = slices.Compact(elems)
		}
		want := parseElements(slices.Clone(elems))
		var p elementStream
		for rest := elems; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			p.add(rest[:n])
			rest = rest[n:]
		}
		got := p.result()
		if got.dirty != want.dirty || !want.dirty && !slices.Equal(got.intervals, want.intervals) {
			t.Fatalf("elements %v: got %v dirty %v, want %v dirty %v", elems, got.intervals, got.dirty, want.intervals, want.dirty)
		}
	}
}
