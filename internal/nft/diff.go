package nft

import (
	"context"
	"fmt"

	"github.com/google/nftables"
)

// Diff is what a sync would change in masqd's table, found the way Sync
// finds it, without sending anything.
type Diff struct {
	// Op is what a sync would do: nothing, create the table, replace it
	// whole (Reason says why), or update it in place.
	Op     Op
	Reason string
	// Rules are the chain's rules a sync would remove and add, in chain
	// order; empty when the rules match.
	Rules []RuleChange
	// Sets are the sets a sync would change.
	Sets []SetDiff
	// Generation is the ruleset generation id the table was read at.
	Generation uint32
}

// RuleChange is one rule a sync would remove from the chain or add to it.
type RuleChange struct {
	// Add is true for a rule of the ruleset that the kernel lacks, false
	// for a kernel rule that the ruleset lacks.
	Add bool
	// Position is the rule's place in its chain, from 1: the kernel's
	// chain for a removal, the ruleset's for an addition.
	Position int
	// Handle is the kernel's handle of a rule to remove.
	Handle uint64
	// Text is the rule in nft's words.
	Text string
}

// SetDiff is what a sync would do to one set.
type SetDiff struct {
	Name string
	// Added and Removed are the intervals a sync would add and delete.
	Added, Removed []Interval
	// Created and Deleted say that the set itself would be added (it is
	// missing) or deleted (it is not one of the ruleset's).
	Created, Deleted bool
	// Refill is true when the kernel's elements form no clean intervals
	// (as `nft -f` writes them): a sync would flush and refill the set,
	// even if Added and Removed are empty.
	Refill bool
}

// Empty reports whether the kernel already holds the ruleset.
func (d *Diff) Empty() bool { return d.Op == OpNone }

// Generation returns the ruleset generation id: every nftables commit in
// the namespace increments it.
func (c *Conn) Generation() (uint32, error) {
	if err := c.acquire(); err != nil {
		return 0, err
	}
	defer c.release()
	return c.genID()
}

// Diff reads masqd's table and says what a sync to want would change. It
// never writes to the kernel, and ignores what the Conn remembers of its
// own commits: it always reads the table back.
func (c *Conn) Diff(ctx context.Context, want *Ruleset) (*Diff, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	gen, err := c.genID()
	if err != nil {
		return nil, err
	}
	nc, err := c.newConn()
	if err != nil {
		return nil, err
	}
	obs, err := read(nc, c.nsFd(), want)
	if err != nil {
		return nil, err
	}
	d := &Diff{Generation: gen}
	switch {
	case !obs.exists:
		d.Op = OpCreate
		for i, r := range want.Rules {
			d.Rules = append(d.Rules, RuleChange{Add: true, Position: i + 1, Text: r.String()})
		}
		for _, s := range want.Sets {
			d.Sets = append(d.Sets, SetDiff{Name: s.Name, Added: s.Intervals, Created: true})
		}
		return d, nil
	case obs.schema != "":
		d.Op, d.Reason = OpReplace, obs.schema
		return d, nil
	}
	for _, s := range want.Sets {
		have := obs.sets[s.Name]
		if have == nil {
			d.Sets = append(d.Sets, SetDiff{Name: s.Name, Added: s.Intervals, Created: true})
			continue
		}
		del, add := intervalDelta(have.intervals, s.Intervals)
		if len(del) > 0 || len(add) > 0 || have.dirty {
			d.Sets = append(d.Sets, SetDiff{Name: s.Name, Added: add, Removed: del, Refill: have.dirty})
		}
	}
	for _, name := range obs.extra {
		d.Sets = append(d.Sets, SetDiff{Name: name, Deleted: true})
	}
	if !obs.rules {
		t := tableObj(want.Table)
		got, err := nc.GetRules(t, &nftables.Chain{Name: want.Chain, Table: t})
		if err != nil {
			return nil, fmt.Errorf("list rules of %s/%s: %w", want.Table, want.Chain, err)
		}
		d.Rules = ruleChanges(got, want.Rules)
	}
	if len(d.Sets) > 0 || len(d.Rules) > 0 {
		d.Op = OpUpdate
	}
	return d, nil
}

// ruleChanges lists the rules to remove from got and add to it to get
// want, keeping the longest common subsequence in place, as a line diff
// does. Chains hold a handful of rules: quadratic is fine.
func ruleChanges(got []*nftables.Rule, want []Rule) []RuleChange {
	n, m := len(got), len(want)
	// lcs[i][j] is the longest common subsequence of got[i:] and want[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if sameRule(got[i], want[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []RuleChange
	remove := func(i int) {
		out = append(out, RuleChange{Position: i + 1, Handle: got[i].Handle, Text: describeRule(got[i])})
	}
	add := func(j int) {
		out = append(out, RuleChange{Add: true, Position: j + 1, Text: want[j].String()})
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case sameRule(got[i], want[j]):
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			remove(i)
			i++
		default:
			add(j)
			j++
		}
	}
	for ; i < n; i++ {
		remove(i)
	}
	for ; j < m; j++ {
		add(j)
	}
	return out
}
