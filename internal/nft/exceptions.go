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
	// Why names where the entry comes from: a config list, or the
	// link-local exemption.
	Why string
	// Source is the file and line that wrote it; zero for built-in entries.
	Source config.Source
}

// entries are cfg's destination prefixes of one family: the exempt ones, the
// exceptions, and the link-local exemption unless it is turned off or, for
// IPv6, IPv6 is not masqueraded at all.
func entries(cfg *config.Config, opts Options, fam Family) []Entry {
	var out []Entry
	add := func(l config.List, masq bool) {
		for i, p := range cfg.Entries(l) {
			if p.Addr().Is4() == (fam == IPv4) {
				out = append(out, Entry{Prefix: p, Masquerade: masq, Why: l.String(), Source: cfg.Source(l, i)})
			}
		}
	}
	add(config.NonMasquerade, false)
	add(config.Masquerade, true)
	switch {
	case fam == IPv4 && !cfg.MasqLinkLocal:
		out = append(out, Entry{Prefix: linkLocalV4, Why: "the link-local exemption (masqLinkLocal: false)"})
	case fam == IPv6 && opts.EnableIPv6 && !cfg.MasqLinkLocalIPv6:
		out = append(out, Entry{Prefix: linkLocalV6, Why: "the link-local exemption (masqLinkLocalIPv6: false)"})
	}
	return out
}

// Containing returns the entries that contain dst, the deciding one first:
// with masqueradeCIDRs in the config, the most specific entry decides, and
// on a tie an exception wins. It is the specification that Build's interval
// set implements, and what explain cites.
func Containing(cfg *config.Config, opts Options, dst netip.Addr) []Entry {
	fam := IPv6
	if dst.Is4() {
		fam = IPv4
	}
	var out []Entry
	for _, e := range entries(cfg, opts, fam) {
		if e.Prefix.Contains(dst) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()), compareBool(b.Masquerade, a.Masquerade))
	})
	return out
}

// Exempt computes the addresses whose deciding entry is not masqueraded, as
// sorted, disjoint, non-adjacent intervals: one set lookup per packet,
// whatever the nesting. Prefixes are nested or disjoint, so one sweep in
// address order with a stack of the open prefixes finds, between any two
// prefix boundaries, the innermost prefix, which decides.
func Exempt(es []Entry) []Interval {
	es = slices.Clone(es)
	// Outer before inner; on a tie the exception is pushed last, so it is
	// the innermost and wins.
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
			compareBool(a.Masquerade, b.Masquerade))
	})
	var (
		out    []Interval
		stack  []Entry
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
		last := lastAddr(top.Prefix)
		if cursor.IsValid() && cursor.Compare(last) <= 0 {
			emit(cursor, last, top.Masquerade)
			cursor = last.Next()
		}
	}
	for _, e := range es {
		start := e.Prefix.Addr()
		for len(stack) > 0 && lastAddr(stack[len(stack)-1].Prefix).Compare(start) < 0 {
			closeTop()
		}
		if len(stack) > 0 && cursor.IsValid() && cursor.Compare(start) < 0 {
			emit(cursor, start.Prev(), stack[len(stack)-1].Masquerade)
		}
		stack = append(stack, e)
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
