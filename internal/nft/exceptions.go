package nft

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/masqd/masqd/internal/config"
)

// Entry is a configured destination prefix and what it asks for: with
// masqueradeCIDRs in the config, the most specific entry that contains a
// destination decides whether it is masqueraded.
type Entry struct {
	Prefix     netip.Prefix
	Masquerade bool
	Kind       EntryKind
	// Source is the file and line that wrote it; zero for built-in entries.
	Source config.Source
}

// eachEntry calls fn for cfg's destination prefixes of one family: the
// exempt ones and the exceptions, with their list and index, then the
// link-local exemption (list and index -1) unless it is turned off or the
// family is not masqueraded at all.
func eachEntry(cfg *config.Config, opts Options, fam Family, fn func(p netip.Prefix, masq bool, l config.List, i int)) {
	for _, l := range []config.List{config.NonMasquerade, config.Masquerade} {
		for i, p := range cfg.Entries(l) {
			if addrFamily(p.Addr()) == fam {
				fn(p, l == config.Masquerade, l, i)
			}
		}
	}
	if fi := fam.info(); fi.enabled(opts) && !fi.masqLinkLocal(cfg) {
		fn(fi.linkLocal, false, 0, -1)
	}
}

// entries are cfg's destination prefixes of one family, with where each
// comes from.
func entries(cfg *config.Config, opts Options, fam Family) []Entry {
	var out []Entry
	eachEntry(cfg, opts, fam, func(p netip.Prefix, masq bool, l config.List, i int) {
		e := Entry{Prefix: p, Masquerade: masq, Kind: LinkLocalEntry}
		if i >= 0 {
			e.Kind, e.Source = kindOf(l), cfg.Source(l, i)
		}
		out = append(out, e)
	})
	return out
}

// span is what the sweep needs of an entry.
type span struct {
	p    netip.Prefix
	masq bool
}

// spans are cfg's destination prefixes of one family, for exempt.
func spans(cfg *config.Config, opts Options, fam Family) []span {
	out := make([]span, 0, len(cfg.NonMasqueradeCIDRs)+len(cfg.MasqueradeCIDRs)+1)
	eachEntry(cfg, opts, fam, func(p netip.Prefix, masq bool, _ config.List, _ int) {
		out = append(out, span{p, masq})
	})
	return out
}

// containing returns the entries that contain dst, the deciding one first:
// with masqueradeCIDRs in the config, the most specific entry decides, and
// on a tie an exception wins. It is the specification that Build's interval
// set implements, and what explain cites.
func containing(cfg *config.Config, opts Options, dst netip.Addr) []Entry {
	var out []Entry
	for _, e := range entries(cfg, opts, addrFamily(dst)) {
		if e.Prefix.Contains(dst) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()), compareBool(b.Masquerade, a.Masquerade))
	})
	return out
}

// exempt computes the addresses whose deciding entry is not masqueraded, as
// sorted, disjoint, non-adjacent intervals: one set lookup per packet,
// whatever the nesting. Prefixes are nested or disjoint, so one sweep in
// address order with a stack of the open prefixes finds, between any two
// prefix boundaries, the innermost prefix, which decides. It sorts ss.
func exempt(ss []span) []Interval {
	// Outer before inner; on a tie the exception is pushed last, so it is
	// the innermost and wins.
	slices.SortFunc(ss, func(a, b span) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p.Bits(), b.p.Bits()); c != 0 {
			return c
		}
		return compareBool(a.masq, b.masq)
	})
	var (
		out    []Interval
		stack  []span
		cursor netip.Addr // first address not yet decided; invalid past the end
	)
	emit := func(first, last netip.Addr, masq bool) {
		if masq {
			return
		}
		if n := len(out); n > 0 && out[n-1].Last.Next() == first {
			out[n-1].Last = last
			return
		}
		out = append(out, Interval{First: first, Last: last})
	}
	// closeTop pops the innermost open prefix and decides the rest of it.
	closeTop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		last := lastAddr(top.p)
		if cursor.IsValid() && cursor.Compare(last) <= 0 {
			emit(cursor, last, top.masq)
			cursor = last.Next()
		}
	}
	for _, s := range ss {
		start := s.p.Addr()
		for len(stack) > 0 && lastAddr(stack[len(stack)-1].p).Compare(start) < 0 {
			closeTop()
		}
		if len(stack) > 0 && cursor.IsValid() && cursor.Compare(start) < 0 {
			emit(cursor, start.Prev(), stack[len(stack)-1].masq)
		}
		stack = append(stack, s)
		cursor = start
	}
	for len(stack) > 0 {
		closeTop()
	}
	return out
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
