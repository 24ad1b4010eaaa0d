package nft

import (
	"context"
	"testing"
	"time"
)

// monitorWait is how long a test waits for the monitor to read an event; on
// a loaded two-core machine that is well under a second.
const monitorWait = 10 * time.Second

// seenGens starts reporting, on the channel returned, the newest generation
// c's Monitor has read up to; an older unread one is replaced, so the
// monitor never blocks. Call it before Monitor starts.
func seenGens(c *Conn) <-chan uint32 {
	ch := make(chan uint32, 1)
	c.seen = func(gen uint32) {
		for {
			select {
			case ch <- gen:
				return
			default:
			}
			select {
			case <-ch:
			default:
			}
		}
	}
	return ch
}

// waitSeen waits until the monitor has read the transaction that made the
// namespace's current generation, and fails the test naming it if not.
func waitSeen(t *testing.T, c *Conn, seen <-chan uint32) {
	t.Helper()
	gen, err := c.genID()
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(monitorWait)
	last := uint32(0)
	for last < gen {
		select {
		case last = <-seen:
		case <-timeout:
			t.Fatalf("monitor has not read generation %d in %s (last read: %d)", gen, monitorWait, last)
		}
	}
}

func TestMonitor(t *testing.T) {
	ns, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)

	seen := seenGens(c)
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
	// The monitor reports the current generation once it listens.
	waitSeen(t, c, seen)

	// Another table's commit moves the generation id, but the monitor
	// knows masqd's table was not touched: no dump.
	nftIn(t, ns, "", "add", "table", "inet", "kube-proxy")
	waitSeen(t, c, seen)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after a foreign table's commit: %+v, want op none from the cache", res)
	}

	// A change to masqd's table is reported at once and repaired.
	nftIn(t, ns, "", "delete", "element", "inet", "masqd", "nomasq-v4", "{", "10.0.0.0/8", "}")
	select {
	case <-changed:
	case <-time.After(monitorWait):
		t.Fatalf("no change reported in %s for an element deleted from masqd's table", monitorWait)
	}
	if res := mustSync(t, c, rs); res.Op != OpUpdate || res.Cached {
		t.Errorf("repair: %+v, want an update from a dump", res)
	}
	// masqd's own commit is reported too, and the sync it causes is free.
	select {
	case <-changed:
	case <-time.After(monitorWait):
		t.Fatalf("no change reported in %s for masqd's own commit", monitorWait)
	}
	waitSeen(t, c, seen)
	if res := mustSync(t, c, rs); res.Op != OpNone || !res.Cached {
		t.Errorf("after own commit: %+v, want op none from the cache", res)
	}
}
