package config

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
)

// List names one of the config's CIDR lists.
type List uint8

// The lists.
const (
	NonMasquerade    List = iota // nonMasqueradeCIDRs
	Masquerade                   // masqueradeCIDRs
	MasqueradeSource             // masqueradeSourceCIDRs
	numLists
)

func (l List) String() string {
	return [...]string{keyCIDRs, keyMasqCIDRs, keySourceCIDRs}[l]
}

func listOf(key string) List {
	switch key {
	case keyMasqCIDRs:
		return Masquerade
	case keySourceCIDRs:
		return MasqueradeSource
	}
	return NonMasquerade
}

// Entries returns a list's prefixes.
func (c *Config) Entries(l List) []netip.Prefix {
	switch l {
	case Masquerade:
		return c.MasqueradeCIDRs
	case MasqueradeSource:
		return c.MasqueradeSourceCIDRs
	}
	return c.NonMasqueradeCIDRs
}

// Source is where a list entry was written. The zero Source is a built-in
// default.
type Source struct {
	File string
	Line int
}

func (s Source) String() string {
	if s.File == "" {
		return "the built-in defaults"
	}
	return fmt.Sprintf("%s:%d", s.File, s.Line)
}

// run is the entries one file contributed to a list: they are contiguous,
// as files are joined in order.
type run struct {
	file  string
	start int
	lines []int32
}

// Source says where entry i of list l came from.
func (c *Config) Source(l List, i int) Source {
	runs := c.sources[l]
	k := sort.Search(len(runs), func(k int) bool { return runs[k].start > i }) - 1
	if k < 0 || i-runs[k].start >= len(runs[k].lines) {
		return Source{}
	}
	return Source{File: runs[k].file, Line: int(runs[k].lines[i-runs[k].start])}
}

// Contribution is what one file added to the CIDR lists.
type Contribution struct {
	File string
	// Entries counts the entries per list, indexed by List.
	Entries [numLists]int
}

// Contributions lists, in the order read, what each file added to the
// CIDR lists.
func (c *Config) Contributions() []Contribution {
	out := make([]Contribution, len(c.Files))
	for i, f := range c.Files {
		out[i].File = f
	}
	for l, runs := range c.sources {
		for _, r := range runs {
			if i := slices.Index(c.Files, r.file); i >= 0 {
				out[i].Entries[l] += len(r.lines)
			}
		}
	}
	return out
}

// Warnings are what `masqd check` reports about a valid config: what
// ip-masq-agent accepted and masqd reads the same way but should be written
// otherwise (see the package doc), settings that the flags make moot, a
// prefix exempted in one file and forced to masquerade in another
// (masquerading wins), and masqueradeCIDRs entries that no
// nonMasqueradeCIDRs entry or link-local exemption covers, so that they
// change nothing.
func (c *Config) Warnings() []Problem {
	out := slices.Clone(c.warnings)
	if len(c.MasqueradeCIDRs) == 0 {
		return out
	}
	exempt := make(map[netip.Prefix]int, len(c.NonMasqueradeCIDRs))
	for i, p := range c.NonMasqueradeCIDRs {
		if _, dup := exempt[p]; !dup {
			exempt[p] = i
		}
	}
	for i, p := range c.MasqueradeCIDRs {
		src := c.Source(Masquerade, i)
		w := Problem{File: src.File, Line: src.Line, Field: keyMasqCIDRs}
		if j, dup := exempt[p]; dup {
			w.Message = fmt.Sprintf("%s is also exempted by nonMasqueradeCIDRs in %s; masquerading wins", p, c.Source(NonMasquerade, j))
			w.Fix = "keep it in one of the two files"
			out = append(out, w)
			continue
		}
		if !c.covered(p, exempt) {
			w.Message = fmt.Sprintf("%s is not inside any nonMasqueradeCIDRs entry, so it is masqueraded anyway", p)
			w.Fix = "remove it, or add the wider range it is an exception to to nonMasqueradeCIDRs"
			out = append(out, w)
		}
	}
	return out
}

var (
	linkLocalV4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocalV6 = netip.MustParsePrefix("fe80::/10")
)

// covered reports whether a wider exempt prefix, or the link-local
// exemption, contains p.
func (c *Config) covered(p netip.Prefix, exempt map[netip.Prefix]int) bool {
	if (!c.MasqLinkLocal && linkLocalV4.Overlaps(p) && linkLocalV4.Bits() <= p.Bits()) ||
		(!c.MasqLinkLocalIPv6 && linkLocalV6.Overlaps(p) && linkLocalV6.Bits() <= p.Bits()) {
		return true
	}
	for bits := p.Bits() - 1; bits >= 0; bits-- {
		if _, ok := exempt[netip.PrefixFrom(p.Addr(), bits).Masked()]; ok {
			return true
		}
	}
	return false
}
