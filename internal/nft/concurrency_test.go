package nft

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConnConcurrentUse uses one Conn as the agent does: syncs from the loop,
// the monitor beside them, the legacy poller and metrics scrapes at any time,
// and a second Conn building batches in the same process. Under -race it
// proves the concurrency contract of Conn's doc comment; without it, that the
// table still ends exactly as the last sync asked.
func TestConnConcurrentUse(t *testing.T) {
	ns, c := netns(t)
	_, other := netns(t)
	a, b := build("10.0.0.0/8", "fd00::/8"), build("192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	monitorDone := make(chan error, 1)
	go func() { monitorDone <- c.Monitor(ctx, a.Table, func() {}) }()

	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, 8*rounds)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	flip := func(c *Conn) func() error {
		i := 0
		return func() error {
			i++
			rs := a
			if i%2 == 0 {
				rs = b
			}
			_, err := c.Sync(context.Background(), rs)
			return err
		}
	}
	run(flip(c))
	run(flip(other))
	run(func() error { _, err := c.Counters(context.Background(), a.Table, a.Chain); return err })
	run(func() error { _, err := c.FindLegacy(context.Background()); return err })
	run(func() error { c.Forget(); return nil })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	mustSync(t, c, b)
	if got := canonical(nftIn(t, ns, "", "list", "table", "inet", b.Table)); got != b.String() {
		t.Errorf("kernel table after concurrent use differs:\n%s", cmp.Diff(b.String(), got))
	}
	cancel()
	if err := <-monitorDone; err != nil {
		t.Errorf("Monitor: %v", err)
	}
}

// TestCloseWaitsForCalls closes a Conn while other goroutines use it, as the
// agent's deferred Close does while its legacy poller may still be reading:
// calls in flight finish on a live namespace handle, later ones fail with
// ErrClosed, never with a closed (or reused) descriptor.
func TestCloseWaitsForCalls(t *testing.T) {
	_, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)
	const calls = 200
	errs := make(chan error, 2)
	for _, call := range []func() error{
		func() error { _, err := c.Counters(context.Background(), rs.Table, rs.Chain); return err },
		func() error { _, err := c.FindLegacy(context.Background()); return err },
	} {
		go func() {
			for range calls {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("call beside Close: %v, want nil or ErrClosed", err)
		}
	}
	if _, err := c.Sync(context.Background(), rs); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
}
