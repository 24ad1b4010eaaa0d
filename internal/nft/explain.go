package nft

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/masqd/masqd/internal/config"
)

// EntryKind says where a destination Entry comes from.
type EntryKind uint8

// Entry kinds.
const (
	// NonMasqueradeEntry is an entry of nonMasqueradeCIDRs.
	NonMasqueradeEntry EntryKind = iota
	// MasqueradeEntry is an entry of masqueradeCIDRs.
	MasqueradeEntry
	// LinkLocalEntry is the built-in link-local exemption (169.254.0.0/16,
	// fe80::/10), there unless masqLinkLocal or masqLinkLocalIPv6 is set.
	LinkLocalEntry
)

// String names the list or exemption, as a config author knows it.
func (k EntryKind) String() string {
	switch k {
	case MasqueradeEntry:
		return config.Masquerade.String()
	case LinkLocalEntry:
		return "the link-local exemption"
	}
	return config.NonMasquerade.String()
}

// String names an entry and where it was written: "10.0.0.0/8 in
// nonMasqueradeCIDRs (FILE:LINE)", or for the link-local exemption the
// setting that turns it off.
func (e Entry) String() string {
	switch {
	case e.Kind != LinkLocalEntry:
		return fmt.Sprintf("%s in %s (%s)", e.Prefix, e.Kind, e.Source)
	case e.Prefix.Addr().Is4():
		return fmt.Sprintf("%s in %s (masqLinkLocal: false)", e.Prefix, e.Kind)
	}
	return fmt.Sprintf("%s in %s (masqLinkLocalIPv6: false)", e.Prefix, e.Kind)
}

func kindOf(l config.List) EntryKind {
	if l == config.Masquerade {
		return MasqueradeEntry
	}
	return NonMasqueradeEntry
}

// Query is what Explain is asked about.
type Query struct {
	// Dst are the destinations: a single address is a /32 or /128. IPv4
	// comes as IPv4: callers unmap IPv4-mapped IPv6 prefixes.
	Dst netip.Prefix
	// Src is the packets' source. The zero Addr stands for a pod: a source
	// inside masqueradeSourceCIDRs, when they list one of Dst's family.
	Src netip.Addr
	// Local are the destinations local to the node: the kernel's local
	// routes (LocalRoutes), which `fib daddr type local` matches.
	Local []netip.Prefix
}

// Answer is Explain's answer for a range of destinations that share it.
type Answer struct {
	// Dst is the range of destinations the answer holds for.
	Dst Interval
	// Local says that Dst is local to the node.
	Local bool
	// Verdict is the chain's: the deciding rule, the set element that
	// matched, the source NAT.
	Verdict Verdict
	// ByEntry says that the verdict follows from the most specific config
	// entry (the config has masqueradeCIDRs, and the deciding rule is the
	// exempt set or the masquerade after it). Entry is that entry; it is
	// zero when no entry contains Dst.
	ByEntry bool
	Entry   Entry
	// Overrides is the most specific entry that contains Dst and asks the
	// opposite of Entry; zero when there is none.
	Overrides Entry
	// From are, without masqueradeCIDRs, the nonMasqueradeCIDRs entries
	// behind the set element that matched (Verdict.Interval) that overlap
	// Dst, least specific first.
	From []Entry
	// SourcesOnly says that the verdict depends on the source, which the
	// query left out: only packets from Sources, the masqueradeSourceCIDRs
	// of Dst's family, are masqueraded, and a masquerade verdict is theirs.
	// When Sources is empty, no packet of that family is masqueraded, and
	// the verdict (the source rule's) says so.
	SourcesOnly bool
	Sources     []netip.Prefix
}

// Explain answers whether packets to q.Dst are masqueraded and why, as one
// Answer per maximal sub-range of q.Dst that shares one: a single Answer
// when the prefix is uniform. It is pure.
func Explain(cfg *config.Config, opts Options, rs *Ruleset, q Query) []Answer {
	dst := q.Dst.Masked()
	fam := addrFamily(dst.Addr())
	whole := IntervalOf(dst)
	ents := entries(cfg, opts, fam)
	idx := indexEntries(ents)
	srcs, all := cfg.MasqueradeSources(fam == IPv6)
	sourcesOnly := !all && !q.Src.IsValid()
	exceptions := len(cfg.MasqueradeCIDRs) > 0

	var out []Answer
	cuts := cutPoints(whole, ents, rs, q.Local)
	for i, first := range cuts {
		last := whole.Last
		if i+1 < len(cuts) {
			last = cuts[i+1].Prev()
		}
		local := slices.ContainsFunc(q.Local, func(p netip.Prefix) bool { return p.Contains(first) })
		v := rs.Trace(Packet{Dst: first, Src: q.Src, Local: local})
		a := Answer{Dst: Interval{First: first, Last: last}, Local: local, Verdict: v}
		in := idx.containing(first)
		switch {
		case exceptions && v.Rule >= 0 && decidedByEntries(rs.Rules[v.Rule]):
			a.ByEntry = true
			if len(in) > 0 {
				a.Entry = in[0]
				if k := slices.IndexFunc(in, func(e Entry) bool { return e.Masquerade != in[0].Masquerade }); k > 0 {
					a.Overrides = in[k]
				}
			}
		case v.Interval.First.IsValid():
			for _, e := range slices.Backward(in) {
				if e.Kind == NonMasqueradeEntry {
					a.From = append(a.From, e)
				}
			}
		}
		if sourcesOnly && (v.Masquerade || (v.Rule >= 0 && rs.Rules[v.Rule].Match.SourceNotIn != "")) {
			a.SourcesOnly, a.Sources = true, srcs
		}
		if n := len(out); n > 0 && out[n-1].sameVerdict(a) {
			out[n-1].Dst.Last = last
			out[n-1].From = unionEntries(out[n-1].From, a.From)
			continue
		}
		out = append(out, a)
	}
	return out
}

// decidedByEntries reports whether rule r's verdict follows from the
// destination entries: the exempt sets, or the masquerade the lists let
// through.
func decidedByEntries(r Rule) bool {
	return r.Match.Set != "" || (r.Masquerade && r.Match.SourceNotIn == "")
}

// sameVerdict reports whether a and b give the same answer for
// different destinations; From may differ.
func (a Answer) sameVerdict(b Answer) bool {
	return a.Local == b.Local && a.Verdict == b.Verdict && a.ByEntry == b.ByEntry &&
		a.Entry == b.Entry && a.Overrides == b.Overrides &&
		a.SourcesOnly == b.SourcesOnly && slices.Equal(a.Sources, b.Sources)
}

// unionEntries appends to a the entries of b it does not hold.
func unionEntries(a, b []Entry) []Entry {
	for _, e := range b {
		if !slices.Contains(a, e) {
			a = append(a, e)
		}
	}
	return a
}

// cutPoints returns, sorted, whole.First and every address inside whole
// where some entry, set element, rule prefix or local route begins or
// ends: between two cuts, every question Explain asks has one answer.
func cutPoints(whole Interval, ents []Entry, rs *Ruleset, local []netip.Prefix) []netip.Addr {
	cuts := []netip.Addr{whole.First}
	add := func(iv Interval) {
		for _, a := range []netip.Addr{iv.First, iv.Last.Next()} {
			if a.IsValid() && a.BitLen() == whole.First.BitLen() && whole.First.Less(a) && a.Compare(whole.Last) <= 0 {
				cuts = append(cuts, a)
			}
		}
	}
	for _, e := range ents {
		add(IntervalOf(e.Prefix))
	}
	for _, s := range rs.Sets {
		if s.Name == SetSrcV4 || s.Name == SetSrcV6 {
			continue
		}
		for _, iv := range s.Intervals {
			add(iv)
		}
	}
	for _, r := range rs.Rules {
		if r.Match.Prefix.IsValid() {
			add(IntervalOf(r.Match.Prefix))
		}
	}
	for _, p := range local {
		add(IntervalOf(p))
	}
	slices.SortFunc(cuts, netip.Addr.Compare)
	return slices.Compact(cuts)
}

// entryIndex finds the entries that contain an address with one map lookup
// per prefix length, whatever their number.
type entryIndex map[netip.Prefix][]Entry

func indexEntries(ents []Entry) entryIndex {
	idx := entryIndex{}
	for _, e := range ents {
		p := e.Prefix.Masked()
		idx[p] = append(idx[p], e)
	}
	for _, es := range idx {
		// On a tie an exception wins, as in containing.
		slices.SortStableFunc(es, func(a, b Entry) int { return cmp.Compare(kindRank(a), kindRank(b)) })
	}
	return idx
}

func kindRank(e Entry) int {
	if e.Masquerade {
		return 0
	}
	return 1
}

// containing returns the entries that contain a, the deciding one first,
// as containing orders them.
func (idx entryIndex) containing(a netip.Addr) []Entry {
	var out []Entry
	for bits := a.BitLen(); bits >= 0; bits-- {
		p, _ := a.Prefix(bits)
		out = append(out, idx[p]...)
	}
	return out
}
