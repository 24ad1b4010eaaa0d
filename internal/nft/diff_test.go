package nft

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/nftables"
)

func mustDiff(t *testing.T, c *Conn, rs *Ruleset) *Diff {
	t.Helper()
	before, err := c.Generation()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(context.Background(), rs)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	after, err := c.Generation()
	if err != nil {
		t.Fatal(err)
	}
	if before != after || d.Generation != before {
		t.Errorf("Diff moved the generation from %d to %d (read at %d): it must not write", before, after, d.Generation)
	}
	return d
}

// TestKernelDiff: Diff reports what Sync would do, in detail, and never
// writes to the kernel.
func TestKernelDiff(t *testing.T) {
	ns, c := netns(t)
	rs := Build(&goldenCases[0].cfg, goldenCases[0].opts)

	d := mustDiff(t, c, rs)
	if d.Op != OpCreate || len(d.Rules) != len(rs.Rules) || len(d.Sets) != len(rs.Sets) || !d.Sets[0].Created {
		t.Errorf("no table: %+v, want create with every rule and set", d)
	}
	if out := nftIn(t, ns, "", "list", "ruleset"); out != "" {
		t.Fatalf("Diff wrote to the kernel:\n%s", out)
	}

	mustSync(t, c, rs)
	if d := mustDiff(t, c, rs); !d.Empty() || len(d.Rules) > 0 || len(d.Sets) > 0 {
		t.Errorf("in sync: %+v, want nothing", d)
	}

	// Someone adds an element and a rule by hand.
	nftIn(t, ns, "", "add", "element", "inet", "masqd", SetV4, "{ 192.0.2.99 }")
	nftIn(t, ns, "", "add", "rule", "inet", "masqd", "postrouting", "ip", "daddr", "198.51.100.1", "counter", "accept")
	d = mustDiff(t, c, rs)
	want := &Diff{
		Op:         OpUpdate,
		Rules:      []RuleChange{{Position: 6, Handle: d.Rules[0].Handle, Text: "ip daddr 198.51.100.1 counter accept"}},
		Sets:       []SetDiff{{Name: SetV4, Removed: []Interval{IntervalOf(netip.MustParsePrefix("192.0.2.99/32"))}}},
		Generation: d.Generation,
	}
	if diff := cmp.Diff(want, d, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("after foreign changes (-want +got):\n%s", diff)
	}
	if d.Rules[0].Handle == 0 {
		t.Error("the foreign rule's handle is 0")
	}

	// A foreign chain is a schema change: a sync replaces the table.
	nftIn(t, ns, "", "add", "chain", "inet", "masqd", "extra")
	if d := mustDiff(t, c, rs); d.Op != OpReplace || d.Reason != "table has 2 chains, want 1" {
		t.Errorf("foreign chain: %+v, want a replace", d)
	}
	mustSync(t, c, rs)
	if d := mustDiff(t, c, rs); !d.Empty() {
		t.Errorf("after a sync: %+v, want nothing", d)
	}
}

// TestRuleChanges: rules in place stay out of the diff, as lines do in a
// line diff.
func TestRuleChanges(t *testing.T) {
	rs := Build(&goldenCases[0].cfg, goldenCases[0].opts)
	kernel := func(rules ...Rule) []*nftables.Rule {
		var out []*nftables.Rule
		for i, r := range rules {
			out = append(out, &nftables.Rule{Handle: uint64(10 + i), Exprs: ruleExprs(r, nil), UserData: userData(r.Comment)})
		}
		return out
	}
	byHand := Rule{Match: Match{Family: IPv4, Prefix: netip.MustParsePrefix("203.0.113.0/24")}, Comment: "by hand"}
	for _, tc := range []struct {
		name string
		got  []*nftables.Rule
		want []RuleChange
	}{
		{"same", kernel(rs.Rules...), nil},
		{"first replaced", kernel(append([]Rule{byHand}, rs.Rules[1:]...)...), []RuleChange{
			{Position: 1, Handle: 10, Text: byHand.String()},
			{Add: true, Position: 1, Text: rs.Rules[0].String()},
		}},
		{"one missing, one extra at the end", kernel(append(append([]Rule{}, rs.Rules[:2]...), append(rs.Rules[3:], byHand)...)...), []RuleChange{
			{Add: true, Position: 3, Text: rs.Rules[2].String()},
			{Position: 5, Handle: 14, Text: byHand.String()},
		}},
		{"empty chain", nil, []RuleChange{
			{Add: true, Position: 1, Text: rs.Rules[0].String()}, {Add: true, Position: 2, Text: rs.Rules[1].String()},
			{Add: true, Position: 3, Text: rs.Rules[2].String()}, {Add: true, Position: 4, Text: rs.Rules[3].String()},
			{Add: true, Position: 5, Text: rs.Rules[4].String()},
		}},
	} {
		if diff := cmp.Diff(tc.want, ruleChanges(tc.got, rs.Rules)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}
