package nft

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/masqd/masqd/internal/config"
)

// WriteText writes the text form of d, as `masqd diff` prints it: a
// headline, then per chain and set the lines a sync would remove (-) and add
// (+), each added interval with the entries of cfg it comes from. rs is the
// ruleset d was computed for, from cfg and opts.
func (d *Diff) WriteText(w io.Writer, rs *Ruleset, cfg *config.Config, opts Options) {
	table := "table inet " + rs.Table
	switch d.Op {
	case OpCreate:
		fmt.Fprintf(w, "%s is missing; a sync would create it:\n", table)
	case OpReplace:
		fmt.Fprintf(w, "%s: a sync would replace it whole: %s\n", table, d.Reason)
		return
	default:
		fmt.Fprintf(w, "%s: a sync would change it in place:\n", table)
	}
	if len(d.Rules) > 0 {
		fmt.Fprintf(w, "chain %s:\n", rs.Chain)
		d.writeRules(w)
	}
	for _, sd := range d.Sets {
		switch {
		case sd.Deleted:
			fmt.Fprintf(w, "set %s: not one of masqd's; a sync would delete it\n", sd.Name)
			continue
		case sd.Created && d.Op != OpCreate:
			fmt.Fprintf(w, "set %s: missing; a sync would create it\n", sd.Name)
		case sd.Refill:
			fmt.Fprintf(w, "set %s: its elements are not in masqd's encoding (as nft -f writes them); a sync would refill it\n", sd.Name)
		default:
			fmt.Fprintf(w, "set %s:\n", sd.Name)
		}
		for _, iv := range sd.Removed {
			fmt.Fprintf(w, "-\t%s: not in the config\n", iv)
		}
		for i, from := range provenances(cfg, opts, sd.Name, sd.Added) {
			fmt.Fprintf(w, "+\t%s: %s\n", sd.Added[i], from)
		}
	}
}

// writeRules writes the rule changes. nft -f encodes some rules differently
// from masqd: the same rule would be removed and added again, and is shown
// once, with ~.
func (d *Diff) writeRules(w io.Writer) {
	added, removed := map[string]bool{}, map[string]bool{}
	for _, r := range d.Rules {
		if r.Add {
			added[r.Text] = true
		} else {
			removed[r.Text] = true
		}
	}
	for _, r := range d.Rules {
		switch {
		case !r.Add && added[r.Text]:
			fmt.Fprintf(w, "~\trule %d, handle %d: %s (encoded differently, as nft -f writes it; a sync rewrites it)\n", r.Position, r.Handle, r.Text)
		case !r.Add:
			fmt.Fprintf(w, "-\trule %d, handle %d: %s\n", r.Position, r.Handle, r.Text)
		case !removed[r.Text]:
			fmt.Fprintf(w, "+\trule %d: %s\n", r.Position, r.Text)
		}
	}
}

// provenances names, for each of ivs, the config entries behind it: those
// of the set's list that overlap it, with file and line, and the
// link-local exemption when Build folded it into the set. One sweep over
// the entries and intervals sorted by address serves them all: a
// 100,000-interval create must not test every entry against every interval.
func provenances(cfg *config.Config, opts Options, set string, ivs []Interval) []string {
	l := config.NonMasquerade
	if set == SetSrcV4 || set == SetSrcV6 {
		l = config.MasqueradeSource
	}
	type entry struct {
		iv Interval
		i  int
	}
	var ents []entry
	for i, p := range cfg.Entries(l) {
		ents = append(ents, entry{IntervalOf(p), i})
	}
	slices.SortStableFunc(ents, func(a, b entry) int { return a.iv.First.Compare(b.iv.First) })
	order := make([]int, len(ivs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return ivs[a].First.Compare(ivs[b].First) })
	out := make([]string, len(ivs))
	var open []entry // entries that begin before the interval's end and may overlap it
	next := 0
	for _, k := range order {
		iv := ivs[k]
		for ; next < len(ents) && ents[next].iv.First.Compare(iv.Last) <= 0; next++ {
			open = append(open, ents[next])
		}
		open = slices.DeleteFunc(open, func(e entry) bool { return e.iv.Last.Less(iv.First) })
		hits := slices.Clone(open)
		slices.SortFunc(hits, func(a, b entry) int { return a.i - b.i })
		var from []string
		for _, e := range hits {
			if e.iv.overlaps(iv) {
				from = append(from, fmt.Sprintf("%s %s (%s)", l, cfg.Entries(l)[e.i], cfg.Source(l, e.i)))
			}
		}
		if l == config.NonMasquerade && len(cfg.MasqueradeCIDRs) > 0 {
			// With exceptions the link-local exemption is an interval of
			// the set, not a rule.
			for _, f := range families {
				fi := f.info()
				if fi.enabled(opts) && !fi.masqLinkLocal(cfg) && IntervalOf(fi.linkLocal).overlaps(iv) {
					from = append(from, fmt.Sprintf("the link-local exemption %s (%s: false)", fi.linkLocal, fi.linkLocalKey))
				}
			}
		}
		out[k] = "from no config entry"
		if len(from) > 0 {
			out[k] = "from " + strings.Join(from, ", ")
		}
	}
	return out
}

// overlaps reports whether two intervals of one family share an address.
func (iv Interval) overlaps(b Interval) bool {
	return iv.First.BitLen() == b.First.BitLen() && iv.First.Compare(b.Last) <= 0 && b.First.Compare(iv.Last) <= 0
}
