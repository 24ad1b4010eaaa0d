package nft

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Interval is a closed range of addresses of one family, [First, Last].
type Interval struct {
	First, Last netip.Addr
}

// Contains reports whether a lies in the interval.
func (iv Interval) Contains(a netip.Addr) bool {
	return a.BitLen() == iv.First.BitLen() && iv.First.Compare(a) <= 0 && a.Compare(iv.Last) <= 0
}

// Prefix returns the interval as a prefix when it is exactly one.
func (iv Interval) Prefix() (netip.Prefix, bool) {
	bits := iv.First.BitLen()
	for l := 0; l <= bits; l++ {
		p := netip.PrefixFrom(iv.First, l)
		if p.Masked() == p && lastAddr(p) == iv.Last {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// String renders the interval as nft does: a prefix when it is one, a range
// otherwise, and a bare address for a single address.
func (iv Interval) String() string {
	if iv.First == iv.Last {
		return iv.First.String()
	}
	if p, ok := iv.Prefix(); ok {
		return p.String()
	}
	return fmt.Sprintf("%s-%s", iv.First, iv.Last)
}

// IntervalOf returns the addresses a masked prefix covers.
func IntervalOf(p netip.Prefix) Interval {
	p = p.Masked()
	return Interval{First: p.Addr(), Last: lastAddr(p)}
}

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// isMax reports whether a is the family's all-ones address.
func isMax(a netip.Addr) bool {
	return !a.Next().IsValid()
}

// Merge turns prefixes of one family into the sorted, disjoint and
// non-adjacent intervals that cover exactly the same addresses. Duplicate,
// nested, overlapping and adjacent prefixes collapse; the kernel's interval
// sets reject overlaps and would keep adjacent ones as separate elements.
func Merge(prefixes []netip.Prefix) []Interval {
	ivs := make([]Interval, 0, len(prefixes))
	for _, p := range prefixes {
		ivs = append(ivs, IntervalOf(p))
	}
	return mergeIntervals(ivs)
}

func mergeIntervals(ivs []Interval) []Interval {
	if len(ivs) == 0 {
		return nil
	}
	slices.SortFunc(ivs, func(a, b Interval) int {
		return cmp.Or(a.First.Compare(b.First), a.Last.Compare(b.Last))
	})
	out := ivs[:1]
	for _, iv := range ivs[1:] {
		cur := &out[len(out)-1]
		// iv starts inside cur or right after it: extend cur.
		if isMax(cur.Last) || iv.First.Compare(cur.Last.Next()) <= 0 {
			if iv.Last.Compare(cur.Last) > 0 {
				cur.Last = iv.Last
			}
			continue
		}
		out = append(out, iv)
	}
	return slices.Clip(out)
}

// find returns the interval of sorted, disjoint ivs that holds a.
func find(ivs []Interval, a netip.Addr) (Interval, bool) {
	i, _ := slices.BinarySearchFunc(ivs, a, func(iv Interval, a netip.Addr) int {
		if iv.Last.Compare(a) < 0 {
			return -1
		}
		if iv.First.Compare(a) > 0 {
			return 1
		}
		return 0
	})
	if i < len(ivs) && ivs[i].Contains(a) {
		return ivs[i], true
	}
	return Interval{}, false
}
