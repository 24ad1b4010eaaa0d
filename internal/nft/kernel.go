package nft

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// observed is what the kernel holds in masqd's table, in the terms the planner
// compares against a Ruleset.
type observed struct {
	exists bool
	// schema is empty when the table has exactly the sets and the chain the
	// ruleset asks for, with the right types and hook; otherwise it says
	// what differs.
	schema string
	// rules reports whether the chain's rules equal the ruleset's.
	rules bool
	sets  map[string]*observedSet
	// extra names sets that the ruleset does not have: masqd's optional
	// ones after their setting is removed, or foreign ones. They are
	// deleted in place.
	extra []string
}

type observedSet struct {
	intervals []Interval
	// dirty marks elements that form no clean interval: a dangling end (as
	// `nft -f` writes at the start of an interval set), two starts in a row.
	// A sync flushes and refills such a set rather than guess at a delta.
	dirty bool
}

// fromRuleset is the kernel state that a successful commit of rs left.
func fromRuleset(rs *Ruleset) *observed {
	o := &observed{exists: true, rules: true, sets: map[string]*observedSet{}}
	for _, s := range rs.Sets {
		o.sets[s.Name] = &observedSet{intervals: s.Intervals}
	}
	return o
}

// compareCached fills in schema and rules for a cached state: the last ruleset
// masqd committed, with nothing committed since.
func compareCached(last, want *Ruleset) *observed {
	o := fromRuleset(last)
	o.rules = reflect.DeepEqual(last.Rules, want.Rules)
	if last.Table != want.Table || last.Chain != want.Chain {
		o.schema = "table or chain name changed"
		return o
	}
	for _, s := range last.Sets {
		switch ws := want.Set(s.Name); {
		case ws == nil:
			o.extra = append(o.extra, s.Name)
			delete(o.sets, s.Name)
		case ws.Family != s.Family:
			o.schema = "set " + s.Name + " changed family"
		}
	}
	return o
}

// read dumps masqd's table and compares it with want.
func read(c *nftables.Conn, nsFd int, want *Ruleset) (*observed, error) {
	t, err := c.ListTableOfFamily(want.Table, nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return &observed{}, nil
		}
		return nil, fmt.Errorf("list table %s: %w", want.Table, err)
	}
	o := &observed{exists: true, sets: map[string]*observedSet{}}
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		ws := want.Set(s.Name)
		if ws == nil {
			o.extra = append(o.extra, s.Name)
			continue
		}
		if s.KeyType.Name != ws.Family.info().key.Name || !s.Interval || s.IsMap || s.HasTimeout || s.Constant {
			o.schema = "set " + s.Name + " has the wrong type or flags"
			continue
		}
		if o.sets[s.Name], _, err = dumpSet(nsFd, s); err != nil {
			return nil, err
		}
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var ours *nftables.Chain
	n := 0
	for _, ch := range chains {
		if ch.Table.Name != want.Table {
			continue
		}
		n++
		if ch.Name == want.Chain {
			ours = ch
		}
	}
	switch {
	case ours == nil:
		o.schema = "chain " + want.Chain + " is missing"
	case n != 1:
		o.schema = fmt.Sprintf("table has %d chains, want 1", n)
	case !chainMatches(ours):
		o.schema = "chain " + want.Chain + " has the wrong type, hook, priority or policy"
	}
	if ours != nil && o.schema == "" {
		rules, err := c.GetRules(t, ours)
		if err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		o.rules = rulesMatch(rules, want)
	}
	return o, nil
}

func chainMatches(ch *nftables.Chain) bool {
	return ch.Type == nftables.ChainTypeNAT &&
		ch.Hooknum != nil && *ch.Hooknum == *nftables.ChainHookPostrouting &&
		ch.Priority != nil && *ch.Priority == ChainPriority &&
		ch.Policy != nil && *ch.Policy == nftables.ChainPolicyAccept
}

// rulesMatch compares rules read back from the kernel with the ruleset's,
// expression by expression, ignoring counter values and set IDs.
func rulesMatch(got []*nftables.Rule, want *Ruleset) bool {
	if len(got) != len(want.Rules) {
		return false
	}
	for i, r := range got {
		if !sameRule(r, want.Rules[i]) {
			return false
		}
	}
	return true
}

// sameRule compares a rule read back from the kernel with one of the
// ruleset's.
func sameRule(got *nftables.Rule, w Rule) bool {
	c, _ := userdata.GetString(got.UserData, userdata.TypeComment)
	return c == w.Comment && reflect.DeepEqual(normalize(got.Exprs), normalize(ruleExprs(w, nil)))
}

// normalize zeroes what legitimately differs between a rule as sent and as
// read back.
func normalize(exprs []expr.Any) []expr.Any {
	out := make([]expr.Any, len(exprs))
	for i, e := range exprs {
		switch e := e.(type) {
		case *expr.Counter:
			out[i] = &expr.Counter{}
		case *expr.Lookup:
			l := *e
			l.SetID = 0
			out[i] = &l
		case *expr.NAT:
			n := *e
			// An address without a maximum is read back with the
			// minimum's register for both.
			if n.RegAddrMax == n.RegAddrMin {
				n.RegAddrMax = 0
			}
			out[i] = &n
		default:
			out[i] = e
		}
	}
	return out
}

// intervalDelta returns what to delete from have and add to it to get want.
// Both are sorted and disjoint.
func intervalDelta(have, want []Interval) (del, add []Interval) {
	i, j := 0, 0
	for i < len(have) && j < len(want) {
		switch c := cmp.Or(have[i].First.Compare(want[j].First), have[i].Last.Compare(want[j].Last)); {
		case c == 0:
			i++
			j++
		case c < 0:
			del = append(del, have[i])
			i++
		default:
			add = append(add, want[j])
			j++
		}
	}
	return append(del, have[i:]...), append(add, want[j:]...)
}
