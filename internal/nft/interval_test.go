package nft

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

func TestMerge(t *testing.T) {
	cases := []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}},
		{[]string{"10.0.0.0/8", "10.0.0.0/8"}, []string{"10.0.0.0/8"}},
		{[]string{"10.1.0.0/16", "10.0.0.0/8"}, []string{"10.0.0.0/8"}},
		{[]string{"10.0.0.0/9", "10.128.0.0/9"}, []string{"10.0.0.0/8"}},
		{[]string{"10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8"}, []string{"10.0.0.0-12.255.255.255"}},
		{[]string{"192.0.2.1/32", "192.0.2.3/32"}, []string{"192.0.2.1", "192.0.2.3"}},
		{[]string{"0.0.0.0/0", "10.0.0.0/8"}, []string{"0.0.0.0/0"}},
		{[]string{"255.255.255.255/32", "255.255.255.254/32"}, []string{"255.255.255.254/31"}},
		{[]string{"2001:db8::/33", "2001:db8:8000::/33"}, []string{"2001:db8::/32"}},
		{[]string{"::/0", "fd00::/8"}, []string{"::/0"}},
	}
	for _, tc := range cases {
		var got []string
		for _, iv := range Merge(prefixes(tc.in...)) {
			got = append(got, iv.String())
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("Merge(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestMergeProperty checks on random prefixes that the merged intervals are
// sorted, disjoint, non-adjacent and cover exactly the input's addresses.
func TestMergeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var in []netip.Prefix
		for range r.IntN(20) {
			// A small address space (10.0.0.0/24) makes overlaps common.
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(256))})
			in = append(in, netip.PrefixFrom(a, 24+r.IntN(9)).Masked())
		}
		out := Merge(in)
		for i := 1; i < len(out); i++ {
			if out[i-1].Last.Next().Compare(out[i].First) >= 0 {
				t.Fatalf("Merge(%v): %v and %v overlap or touch", in, out[i-1], out[i])
			}
		}
		for b := range 256 {
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(b)})
			inIn := false
			for _, p := range in {
				inIn = inIn || p.Contains(a)
			}
			_, inOut := find(out, a)
			if inIn != inOut {
				t.Fatalf("Merge(%v): %s covered by input %v, by output %v", in, a, inIn, inOut)
			}
		}
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte{10, 0, 0, 0, 8, 10, 1, 0, 0, 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []netip.Prefix
		for len(data) >= 5 {
			a := netip.AddrFrom4([4]byte(data[:4]))
			in = append(in, netip.PrefixFrom(a, int(data[4])%33).Masked())
			data = data[5:]
		}
		out := Merge(in)
		for i := 1; i < len(out); i++ {
			if out[i-1].Last.Next().Compare(out[i].First) >= 0 {
				t.Fatalf("%v and %v overlap or touch", out[i-1], out[i])
			}
		}
		for _, p := range in {
			for _, a := range []netip.Addr{p.Addr(), lastAddr(p)} {
				if _, ok := find(out, a); !ok {
					t.Fatalf("%s of %s not covered by %v", a, p, out)
				}
			}
		}
		for _, iv := range out {
			for _, a := range []netip.Addr{iv.First, iv.Last} {
				covered := false
				for _, p := range in {
					covered = covered || p.Contains(a)
				}
				if !covered {
					t.Fatalf("%s in %v covered by no input prefix", a, iv)
				}
			}
		}
	})
}

func TestElementChunks(t *testing.T) {
	var ivs []Interval
	for i := range 20000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 15), byte(i >> 7), byte(i<<1) & 0xff})
		ivs = append(ivs, Interval{First: a, Last: a})
	}
	ivs = append(ivs, IntervalOf(netip.MustParsePrefix("240.0.0.0/4")))
	chunks, total := 0, 0
	err := eachElementChunk(ivs, func(c []nftables.SetElement) error {
		size := 0
		for _, e := range c {
			// Item, key nest and value headers, the key, and for an
			// end the flags attribute; TestSync100k checks the kernel.
			size += 4 + 4 + 4 + len(e.Key)
			if e.IntervalEnd {
				size += 8
			}
		}
		if size > 65535 {
			t.Errorf("chunk %d encodes to %d bytes, over the 16-bit attribute length", chunks, size)
		}
		if c[0].IntervalEnd {
			t.Errorf("chunk %d starts with an end element: a start was split from its end", chunks)
		}
		chunks++
		total += len(c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chunks < 2 {
		t.Fatalf("20,001 intervals in %d chunk(s), want several", chunks)
	}
	// Every interval has a start and an end, but the last runs to the top.
	if want := 2*len(ivs) - 1; total != want {
		t.Errorf("%d elements, want %d", total, want)
	}
}
