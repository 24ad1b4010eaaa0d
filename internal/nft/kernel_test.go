package nft

import (
	"context"
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
)

// netns creates a throw-away network namespace for one test and returns
// it with a Conn for it; both go when the test ends.
func netns(t testing.TB) (name string, c *Conn) {
	t.Helper()
	name = netnstest.New(t, "masqd-nfttest")
	c, err := Open(netnstest.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, c
}

// nftIn runs nft inside the namespace and fails the test if nft does.
func nftIn(t *testing.T, ns string, stdin string, args ...string) string {
	t.Helper()
	out, err := netnstest.Nft(ns, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// canonical makes nft listings comparable with Ruleset.String.
func canonical(s string) string { return netnstest.Canonical(s) }

// kernelSets reads every set of the table back from the kernel, element by
// element, as intervals.
func kernelSets(t *testing.T, c *Conn, table string) map[string][]Interval {
	t.Helper()
	nc, err := c.newConn()
	if err != nil {
		t.Fatal(err)
	}
	sets, err := nc.GetSets(tableObj(table))
	if err != nil {
		t.Fatalf("list sets of table %s: %v", table, err)
	}
	out := map[string][]Interval{}
	for _, s := range sets {
		o, _, err := dumpSet(c.nsFd(), s)
		if err != nil {
			t.Fatalf("list elements of set %s: %v", s.Name, err)
		}
		out[s.Name] = o.intervals
	}
	return out
}

func mustSync(t *testing.T, c *Conn, rs *Ruleset) Result {
	t.Helper()
	res, err := c.Sync(context.Background(), rs)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return res
}
