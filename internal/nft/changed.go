package nft

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"
)

// Change is a range of destinations, of one family, whose verdict may differ
// between two rulesets: conntrack entries to them were decided by rules that
// no longer hold.
//
// The verdict of masqd's chain can depend on more than the destination: the
// source (masqueradeSourceCIDRs). Conntrack entries are removed by
// destination, so a range is reported as changed when the verdict may
// change for any packet to it, even if only some sources see a difference. WasMasq and NowMasq then tell which entries can be stale.
type Change struct {
	Interval
	// WasMasq says the old ruleset masqueraded some packets to these
	// destinations: a translated entry may be stale.
	WasMasq bool
	// NowMasq says the new ruleset masquerades some packets to these
	// destinations: an untranslated entry may be stale, and so may a
	// translated one whose address, ports or scope changed.
	NowMasq bool
}

// Stale reports whether a conntrack entry to a destination in the range may
// carry a decision the new ruleset would not make. translated says whether
// the entry's source was rewritten (the kernel's IPS_SRC_NAT).
//
// An untranslated entry is stale only if the new ruleset masquerades
// something here; a translated one only if the old one did, since otherwise
// another table (kube-proxy, the CNI) translated it and masqd must not touch
// it.
func (c Change) Stale(translated bool) bool {
	if translated {
		return c.WasMasq
	}
	return c.NowMasq
}

// Changes returns, IPv4 first and in address order, the destination ranges
// whose verdict may differ between old and new, merged where adjacent with
// the same WasMasq and NowMasq. It does no I/O and costs O(n) in the
// rulesets' set sizes.
//
// Two destinations get the same verdict for every packet when the rules
// that can decide them are the same: for each family, the rules whose
// destination match holds, in chain order, up to the first one with no
// other condition. Rules are compared by what they test besides the
// destination (node-local, source set contents) and what they do
// (masquerade or not, --snat-address). FullyRandom is
// left out: it changes how ports are picked, not which translations are
// right. A rule that tests the source makes its destinations change as a
// whole when the source set changes (see Change).
func Changes(before, after *Ruleset) []Change {
	var out []Change
	for _, fam := range []Family{IPv4, IPv6} {
		out = append(out, changes(viewOf(before, fam), viewOf(after, fam), fam)...)
	}
	return out
}

// ruleKey is what a rule tests and does, besides its destination match.
type ruleKey struct {
	local      bool
	srcSet     bool
	src        []Interval
	masquerade bool
	snat       netip.Addr
}

func (k *ruleKey) equal(o *ruleKey) bool {
	return k.local == o.local && k.srcSet == o.srcSet && slices.Equal(k.src, o.src) &&
		k.masquerade == o.masquerade && k.snat == o.snat
}

// final says that a packet whose destination matches the rule stops there.
func (k *ruleKey) final() bool {
	return !k.local && !k.srcSet
}

// viewRule is one rule of a family's chain as the sweep sees it.
type viewRule struct {
	key ruleKey
	// dst is the index of the rule's destination track, -1 when the rule
	// matches every destination of the family.
	dst int
}

// view is one family's chain: its rules, and the destination intervals of
// those that match on the destination.
type view struct {
	rules  []viewRule
	tracks []track
}

func viewOf(rs *Ruleset, fam Family) *view {
	v := &view{}
	for _, r := range rs.Rules {
		m := r.Match
		if m.Family != Any && m.Family != fam {
			continue
		}
		vr := viewRule{dst: -1, key: ruleKey{
			local: m.Local, masquerade: r.Masquerade, snat: r.SNAT,
		}}
		if m.SourceNotIn != "" {
			vr.key.srcSet = true
			if s := rs.Set(m.SourceNotIn); s != nil {
				vr.key.src = s.Intervals
			}
		}
		switch {
		case m.Prefix.IsValid():
			if m.Prefix.Addr().Is4() != (fam == IPv4) {
				continue // Never matches this family.
			}
			vr.dst = len(v.tracks)
			v.tracks = append(v.tracks, track{ivs: []Interval{IntervalOf(m.Prefix)}})
		case m.Set != "":
			var ivs []Interval
			if s := rs.Set(m.Set); s != nil && s.Family == fam {
				ivs = s.Intervals
			}
			vr.dst = len(v.tracks)
			v.tracks = append(v.tracks, track{ivs: ivs})
		}
		v.rules = append(v.rules, vr)
	}
	return v
}

// track walks sorted, disjoint intervals in address order.
type track struct {
	ivs []Interval
	i   int
}

// at reports whether a, which never decreases between calls, lies in the
// track, and the next address above a where that answer changes (invalid
// when it never does).
func (t *track) at(a netip.Addr) (bool, netip.Addr) {
	if t.i < len(t.ivs) && t.ivs[t.i].Last.Less(a) {
		t.i++ // The sweep's usual step: on to the next interval.
		if t.i < len(t.ivs) && t.ivs[t.i].Last.Less(a) {
			// A jump to the next dirty region: search.
			rest := t.ivs[t.i:]
			t.i += sort.Search(len(rest), func(k int) bool { return !rest[k].Last.Less(a) })
		}
	}
	if t.i == len(t.ivs) {
		return false, netip.Addr{}
	}
	if iv := t.ivs[t.i]; iv.First.Compare(a) <= 0 {
		return true, iv.Last.Next()
	}
	return false, t.ivs[t.i].First
}

// walk returns which destination tracks decide a: bit i stands for
// v.rules[i], for rules up to the first final one that matches. It lowers
// next to the nearest address above a where that can change.
func (v *view) walk(a netip.Addr, next *netip.Addr) uint64 {
	var mask uint64
	for i := range v.rules {
		r := &v.rules[i]
		if r.dst >= 0 {
			in, n := v.tracks[r.dst].at(a)
			if n.IsValid() && (!next.IsValid() || n.Less(*next)) {
				*next = n
			}
			if !in {
				continue
			}
		}
		mask |= 1 << i
		if r.key.final() {
			break
		}
	}
	return mask
}

// outcome is what comparing two rule sequences found.
type outcome struct {
	differ, wasMasq, nowMasq bool
}

func changes(before, after *view, fam Family) []Change {
	if len(before.rules) > 64 || len(after.rules) > 64 {
		// More rules than a mask holds: Build never makes such a chain.
		// Say everything may have changed rather than guess.
		return []Change{{Interval: fam.info().all(), WasMasq: true, NowMasq: true}}
	}
	memo := map[[2]uint64]outcome{}
	var out []Change
	for _, region := range dirty(before, after, fam) {
		out = sweep(before, after, region, memo, out)
	}
	return out
}

// dirty returns the regions outside which before and after decide alike.
// When both chains have the same rules, only destinations in an interval of
// one ruleset's set that the other's same set lacks can differ; finding
// them compares intervals, which keeps a one-CIDR change at 100,000 CIDRs
// cheap. Otherwise the whole family is dirty.
func dirty(before, after *view, fam Family) []Interval {
	whole := []Interval{fam.info().all()}
	if len(before.rules) != len(after.rules) {
		return whole
	}
	for i := range before.rules {
		b, a := &before.rules[i], &after.rules[i]
		if b.dst != a.dst || !b.key.equal(&a.key) {
			return whole
		}
	}
	var ivs []Interval
	for i := range before.tracks {
		ivs = unshared(ivs, before.tracks[i].ivs, after.tracks[i].ivs)
	}
	return mergeIntervals(ivs)
}

// unshared appends to out the intervals that only one of sorted a and b
// holds exactly, in one walk over both.
func unshared(out, a, b []Interval) []Interval {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i, j = i+1, j+1
		case cmp.Or(a[i].First.Compare(b[j].First), a[i].Last.Compare(b[j].Last)) < 0:
			out = append(out, a[i])
			i++
		default:
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// sweep walks region in address order, one stretch of equal decisions at a
// time, and appends the stretches whose decisions differ to out.
func sweep(before, after *view, region Interval, memo map[[2]uint64]outcome, out []Change) []Change {
	pos, top := region.First, region.Last
	for {
		var next netip.Addr
		mo, mn := before.walk(pos, &next), after.walk(pos, &next)
		o, ok := memo[[2]uint64{mo, mn}]
		if !ok {
			o = compare(before, mo, after, mn)
			memo[[2]uint64{mo, mn}] = o
		}
		last := top
		if next.IsValid() && next.Compare(top) <= 0 {
			last = next.Prev()
		} else {
			next = netip.Addr{}
		}
		if o.differ {
			n := len(out)
			if n > 0 && out[n-1].Last.Next() == pos && out[n-1].WasMasq == o.wasMasq && out[n-1].NowMasq == o.nowMasq {
				out[n-1].Last = last
			} else {
				out = append(out, Change{Interval: Interval{First: pos, Last: last}, WasMasq: o.wasMasq, NowMasq: o.nowMasq})
			}
		}
		if !next.IsValid() {
			return out
		}
		pos = next
	}
}

// compare tells whether the rules mo selects of before and mn of after
// decide alike, and whether each masquerades anything. Sequences that
// masquerade nothing both leave every packet alone: they decide alike.
func compare(before *view, mo uint64, after *view, mn uint64) outcome {
	a, b := selected(before, mo), selected(after, mn)
	o := outcome{differ: len(a) != len(b)}
	for i := range a {
		if !o.differ && !a[i].equal(b[i]) {
			o.differ = true
		}
		o.wasMasq = o.wasMasq || a[i].masquerade
	}
	for i := range b {
		o.nowMasq = o.nowMasq || b[i].masquerade
	}
	o.differ = o.differ && (o.wasMasq || o.nowMasq)
	return o
}

func selected(v *view, mask uint64) []*ruleKey {
	var out []*ruleKey
	for i := range v.rules {
		if mask&(1<<i) != 0 {
			out = append(out, &v.rules[i].key)
		}
	}
	return out
}
