package nft

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestApplyDelta(t *testing.T) {
	a := netip.MustParseAddr
	iv := func(first, last string) Interval { return Interval{First: a(first), Last: a(last)} }
	start := func(s string) element { return element{addr: a(s)} }
	end := func(s string) element { return element{addr: a(s), end: true} }
	have := []Interval{iv("10.0.0.0", "10.255.255.255"), iv("192.0.2.0", "192.0.2.255"), iv("224.0.0.0", "255.255.255.255")}
	for _, c := range []struct {
		name  string
		delta setDelta
		want  []Interval
		dirty bool
	}{
		{"nothing", setDelta{}, have, false},
		{"add an interval", setDelta{add: []element{start("198.51.100.0"), end("198.51.101.0")}},
			[]Interval{have[0], have[1], iv("198.51.100.0", "198.51.100.255"), have[2]}, false},
		{"delete an interval", setDelta{del: []element{start("192.0.2.0"), end("192.0.3.0")}},
			[]Interval{have[0], have[2]}, false},
		{"delete the open-ended one", setDelta{del: []element{start("224.0.0.0")}},
			have[:2], false},
		{"delete only an end", setDelta{del: []element{end("192.0.3.0")}}, nil, true},
		{"add a dangling end", setDelta{add: []element{end("203.0.113.0")}}, nil, true},
	} {
		got := applyDelta(have, &c.delta)
		if got.dirty != c.dirty {
			t.Errorf("%s: dirty %v, want %v", c.name, got.dirty, c.dirty)
		}
		if !c.dirty && !cmp.Equal(got.intervals, c.want, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
			t.Errorf("%s: got %v, want %v", c.name, got.intervals, c.want)
		}
	}
}

func TestTxDeltaBounded(t *testing.T) {
	// NEWSETELEM messages of half maxReplay start elements and a few more.
	var elems []byte
	for i := range maxReplay/2 + 8 {
		key := attr(unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, attr(unix.NFTA_DATA_VALUE, []byte{10, 0, byte(i >> 8), byte(i)}))
		elems = append(elems, attr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, key)...)
	}
	msg := append([]byte{unix.NFPROTO_INET, 0, 0, 0}, attr(unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, elems)...)
	var d txDelta
	d.addElements(SetV4, msg[:4], false)
	if d.opaque {
		t.Fatal("an empty element message made the transaction opaque")
	}
	d.addElements(SetV4, msg, false)
	if d.opaque || d.n != maxReplay/2+8 {
		t.Fatalf("after one message: %d elements kept (opaque %v), want %d", d.n, d.opaque, maxReplay/2+8)
	}
	d.addElements(SetV4, msg, true)
	if !d.opaque || d.sets != nil {
		t.Errorf("%d elements kept (opaque %v), want the transaction opaque beyond %d", d.n, d.opaque, maxReplay)
	}
}

// attr encodes one netlink attribute.
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestApplyDeltaMatchesFullParse compares the windowed replay with taking
// the whole set apart: random sets of /28s in 10.0.0.0/24 and random
// element changes, including half intervals and the open-ended top.
func TestApplyDeltaMatchesFullParse(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	addr := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(16) * 16)}) }
	for range 2000 {
		var ps []netip.Prefix
		for range rng.IntN(8) {
			ps = append(ps, netip.PrefixFrom(addr(), 28))
		}
		if rng.IntN(4) == 0 {
			ps = append(ps, netip.MustParsePrefix("224.0.0.0/3"))
		}
		ivs := Merge(ps)
		var all []element
		for _, iv := range ivs {
			all = append(all, element{addr: iv.First})
			if end := iv.Last.Next(); end.IsValid() {
				all = append(all, element{addr: end, end: true})
			}
		}
		var sd setDelta
		for range rng.IntN(4) {
			e := element{addr: addr(), end: rng.IntN(2) == 0}
			if rng.IntN(2) == 0 && len(all) > 0 {
				sd.del = append(sd.del, all[rng.IntN(len(all))])
			} else if !slices.Contains(all, e) && !slices.Contains(sd.add, e) {
				sd.add = append(sd.add, e)
			}
		}
		slices.SortFunc(sd.del, elementOrder)
		sd.del = slices.Compact(sd.del)
		full := slices.DeleteFunc(slices.Clone(all), func(e element) bool { return slices.Contains(sd.del, e) })
		full = append(full, sd.add...)
		slices.SortFunc(full, elementOrder)
		want := parseSorted(full)
		got := applyDelta(ivs, &sd)
		if got.dirty != want.dirty || !want.dirty && !slices.Equal(got.intervals, want.intervals) {
			t.Fatalf("set %v, delta %+v: got %v dirty %v, want %v dirty %v", ivs, sd, got.intervals, got.dirty, want.intervals, want.dirty)
		}
	}
}
