package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// exitError makes run exit with code, printing err first unless it is nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// runDiff prints what a sync would change in the kernel's table, as
// kubectl diff does: exit 0 and nothing when in sync, 1 with the changes,
// 2 when it cannot tell. It only reads.
func runDiff(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("diff", args); err != nil {
		return &exitError{2, err}
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return &exitError{2, err}
	}
	c, err := nft.Open(s.netns)
	if err != nil {
		return &exitError{2, err}
	}
	defer c.Close()
	d, err := c.Diff(ctx, rs)
	if err != nil {
		return &exitError{2, err}
	}
	if d.Empty() {
		return nil
	}
	printDiff(e.stdout, d, rs, func(set string, iv nft.Interval) string { return provenance(cfg, opts, set, iv) })
	return &exitError{code: 1}
}

// printDiff writes a Diff: a headline, then per chain and set the lines a
// sync would remove (-) and add (+), each added interval with the config
// entries it comes from.
func printDiff(w io.Writer, d *nft.Diff, rs *nft.Ruleset, from func(set string, iv nft.Interval) string) {
	table := "table inet " + rs.Table
	switch d.Op {
	case nft.OpCreate:
		fmt.Fprintf(w, "%s is missing; a sync would create it:\n", table)
	case nft.OpReplace:
		fmt.Fprintf(w, "%s: a sync would replace it whole: %s\n", table, d.Reason)
		return
	default:
		fmt.Fprintf(w, "%s: a sync would change it in place:\n", table)
	}
	if len(d.Rules) > 0 {
		fmt.Fprintf(w, "chain %s:\n", rs.Chain)
		added := map[string]bool{}
		for _, r := range d.Rules {
			if r.Add {
				added[r.Text] = true
			}
		}
		for _, r := range d.Rules {
			switch {
			case !r.Add && added[r.Text]:
				// nft -f encodes some rules differently from masqd: the
				// same rule would be removed and added again.
				fmt.Fprintf(w, "~\trule %d, handle %d: %s (encoded differently, as nft -f writes it; a sync rewrites it)\n", r.Position, r.Handle, r.Text)
			case !r.Add:
				fmt.Fprintf(w, "-\trule %d, handle %d: %s\n", r.Position, r.Handle, r.Text)
			case !sameText(d.Rules, r.Text):
				fmt.Fprintf(w, "+\trule %d: %s\n", r.Position, r.Text)
			}
		}
	}
	for _, sd := range d.Sets {
		switch {
		case sd.Deleted:
			fmt.Fprintf(w, "set %s: not one of masqd's; a sync would delete it\n", sd.Name)
			continue
		case sd.Created && d.Op != nft.OpCreate:
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
			fmt.Fprintf(w, "+\t%s: %s\n", iv, from(sd.Name, iv))
		}
	}
}

// sameText reports whether a rule with this text is also removed.
func sameText(rules []nft.RuleChange, text string) bool {
	for _, r := range rules {
		if !r.Add && r.Text == text {
			return true
		}
	}
	return false
}

// provenance names the config entries behind an interval of a set: those
// of the set's list that overlap it, with file and line, and the
// link-local exemption when masqd folded it into the set.
func provenance(cfg *config.Config, opts nft.Options, set string, iv nft.Interval) string {
	l := config.NonMasquerade
	if set == nft.SetSrcV4 || set == nft.SetSrcV6 {
		l = config.MasqueradeSource
	}
	var from []string
	for i, p := range cfg.Entries(l) {
		if overlaps(nft.IntervalOf(p), iv) {
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
			if ll.on && overlaps(nft.IntervalOf(netip.MustParsePrefix(ll.p)), iv) {
				from = append(from, fmt.Sprintf("the link-local exemption %s (%s: false)", ll.p, ll.by))
			}
		}
	}
	if len(from) == 0 {
		return "from no config entry"
	}
	return "from " + strings.Join(from, ", ")
}

func overlaps(a, b nft.Interval) bool {
	return a.First.BitLen() == b.First.BitLen() && a.First.Compare(b.Last) <= 0 && b.First.Compare(a.Last) <= 0
}
