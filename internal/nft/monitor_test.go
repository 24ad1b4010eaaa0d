package nft

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// waitSeen waits until the monitor has read the transaction that made the
// namespace's current generation.
func waitSeen(t *testing.T, c *Conn) {
	t.Helper()
	gen, err := c.genID()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.seenGen.Load() < gen {
		if time.Now().After(deadline) {
			t.Fatalf("monitor has not read generation %d in 5s", gen)
		}
		runtime.Gosched()
	}
}

// startMonitor runs c.Monitor until the test ends and returns the channel
// its onChange calls feed.
func startMonitor(t *testing.T, c *Conn, table string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- c.Monitor(ctx, table, func() { changed <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Monitor: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !c.monitoring.Load() {
		if time.Now().After(deadline) {
			t.Fatal("monitor not running after 5s")
		}
		runtime.Gosched()
	}
	return changed
}

// TestMonitorStartsAfterForeignChange covers the agent starting its
// monitor after its first sync: a change committed in between was never
// seen as an event, and must not be taken for masqd's own state.
func TestMonitorStartsAfterForeignChange(t *testing.T) {
	ns, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)
	nftIn(t, ns, "", "add", "element", "inet", "masqd", "nomasq-v4", "{", "192.0.2.0/24", "}")
	changed := startMonitor(t, c, rs.Table)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("the monitor did not report at its start that it may have missed changes")
	}
	if res := mustSync(t, c, rs); res.Op != OpUpdate || res.Cached {
		t.Errorf("sync after the monitor started late: %+v, want an update from a dump", res)
	}
	if got := canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd")); got != rs.String() {
		t.Fatalf("kernel table differs after the repair:\n%s", cmp.Diff(rs.String(), got))
	}
}

func TestMonitor(t *testing.T) {
	ns, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)

	changed := startMonitor(t, c, rs.Table)
	<-changed // the report at its start

	// Another table's commit moves the generation id, but the monitor
	// knows masqd's table was not touched: no dump.
	nftIn(t, ns, "", "add", "table", "inet", "kube-proxy")
	waitSeen(t, c)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after a foreign table's commit: %+v, want op none from the cache", res)
	}

	// A change to masqd's table is reported at once and repaired. Element
	// changes are replayed on the cache, anything else is read back.
	for _, step := range []struct {
		name   string
		args   []string
		cached bool
		sets   []SetChange
	}{
		{"deleted element", []string{"delete", "element", "inet", "masqd", "nomasq-v4", "{", "10.0.0.0/8", "}"}, true, []SetChange{{Name: SetV4, Added: 1}}},
		{"added element", []string{"add", "element", "inet", "masqd", "nomasq-v4", "{", "192.0.2.0/24", "}"}, true, []SetChange{{Name: SetV4, Removed: 1}}},
		{"foreign rule", []string{"add", "rule", "inet", "masqd", "postrouting", "accept"}, false, nil},
	} {
		nftIn(t, ns, "", step.args...)
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change reported", step.name)
		}
		waitSeen(t, c)
		res := mustSync(t, c, rs)
		if res.Op != OpUpdate || res.Cached != step.cached || !cmp.Equal(res.Sets, step.sets) {
			t.Errorf("%s: repair %+v, want an update with sets %+v, from the cache: %v", step.name, res, step.sets, step.cached)
		}
		if got := canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd")); got != rs.String() {
			t.Fatalf("%s: kernel table differs after the repair:\n%s", step.name, cmp.Diff(rs.String(), got))
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change reported for masqd's own commit", step.name)
		}
	}
	// masqd's own commit is reported too, and the sync it causes is free.
	waitSeen(t, c)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after own commit: %+v, want op none from the cache", res)
	}
}
