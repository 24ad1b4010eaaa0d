package nft

import (
	"fmt"
	"io"
	"net/netip"
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
		for _, iv := range sd.Added {
			fmt.Fprintf(w, "+\t%s: %s\n", iv, provenance(cfg, opts, sd.Name, iv))
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

// provenance names the config entries behind an interval of a set: those
// of the set's list that overlap it, with file and line, and the
// link-local exemption when Build folded it into the set.
func provenance(cfg *config.Config, opts Options, set string, iv Interval) string {
	l := config.NonMasquerade
	if set == SetSrcV4 || set == SetSrcV6 {
		l = config.MasqueradeSource
	}
	var from []string
	for i, p := range cfg.Entries(l) {
		if IntervalOf(p).overlaps(iv) {
			from = append(from, fmt.Sprintf("%s %s (%s)", l, p, cfg.Source(l, i)))
		}
	}
	if l == config.NonMasquerade && len(cfg.MasqueradeCIDRs) > 0 {
		// With exceptions the link-local exemption is an interval of the
		// set, not a rule.
		for _, ll := range []struct {
			p  string
			on bool
			by string
		}{
			{"169.254.0.0/16", !cfg.MasqLinkLocal, "masqLinkLocal"},
			{"fe80::/10", opts.EnableIPv6 && !cfg.MasqLinkLocalIPv6, "masqLinkLocalIPv6"},
		} {
			if ll.on && IntervalOf(netip.MustParsePrefix(ll.p)).overlaps(iv) {
				from = append(from, fmt.Sprintf("the link-local exemption %s (%s: false)", ll.p, ll.by))
			}
		}
	}
	if len(from) == 0 {
		return "from no config entry"
	}
	return "from " + strings.Join(from, ", ")
}

// overlaps reports whether two intervals of one family share an address.
func (iv Interval) overlaps(b Interval) bool {
	return iv.First.BitLen() == b.First.BitLen() && iv.First.Compare(b.Last) <= 0 && b.First.Compare(iv.Last) <= 0
}
