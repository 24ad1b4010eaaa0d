package nft

import (
	"context"
	"runtime"
	"testing"
	"time"
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

func TestMonitor(t *testing.T) {
	ns, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)

	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- c.Monitor(ctx, rs.Table, func() { changed <- struct{}{} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Monitor: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !c.monitoring.Load() && time.Now().Before(deadline) {
		runtime.Gosched()
	}

	// Another table's commit moves the generation id, but the monitor
	// knows masqd's table was not touched: no dump.
	nftIn(t, ns, "", "add", "table", "inet", "kube-proxy")
	waitSeen(t, c)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after a foreign table's commit: %+v, want op none from the cache", res)
	}

	// A change to masqd's table is reported at once and repaired.
	nftIn(t, ns, "", "delete", "element", "inet", "masqd", "nomasq-v4", "{", "10.0.0.0/8", "}")
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported for a deleted element")
	}
	if res := mustSync(t, c, rs); res.Op != OpUpdate || res.Cached {
		t.Errorf("repair: %+v, want an update from a dump", res)
	}
	// masqd's own commit is reported too, and the sync it causes is free.
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported for masqd's own commit")
	}
	waitSeen(t, c)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after own commit: %+v, want op none from the cache", res)
	}
}
