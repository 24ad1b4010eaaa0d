package watch_test

import (
	"testing"
	"time"

	"github.com/masqd/masqd/internal/watch"
	"github.com/masqd/masqd/internal/watch/watchtest"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// expectTick waits for the ticker's wake-up; the fake clock has already
// fired the timer, so only the ticker goroutine's hand-off is awaited.
func expectTick(t *testing.T, tr *watch.Trigger) {
	t.Helper()
	select {
	case <-tr.C():
		if r := tr.Take(); r != watch.ReasonResync {
			t.Errorf("reason %s, want resync", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no tick")
	}
}

// expectNoTick checks that nothing is pending. It is only meaningful when
// no timer fired, so that the ticker had nothing to hand off.
func expectNoTick(t *testing.T, tr *watch.Trigger) {
	t.Helper()
	select {
	case <-tr.C():
		t.Errorf("an early tick: %s", tr.Take())
	default:
	}
}

func newTicker(t *testing.T, interval time.Duration) (*watchtest.FakeClock, *watch.Ticker, *watch.Trigger) {
	t.Helper()
	clock := watchtest.NewFakeClock(start)
	tr := watch.NewTrigger()
	k := watch.NewTicker(clock, interval, tr)
	t.Cleanup(k.Stop)
	return clock, k, tr
}

func TestTickerTicksEveryInterval(t *testing.T) {
	clock, _, tr := newTicker(t, 10*time.Second)
	for i := 1; i <= 3; i++ {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		clock.BlockUntilArmed(at)
		clock.Advance(10*time.Second - time.Nanosecond)
		expectNoTick(t, tr)
		clock.Advance(time.Nanosecond)
		expectTick(t, tr)
	}
}

func TestTickerReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		// reset is the new interval, given 4 s into a 10 s period.
		reset time.Duration
		// next is when the following tick is due.
		next time.Time
	}{
		{"shorter starts a new period at once", 3 * time.Second, start.Add(7 * time.Second)},
		{"longer starts a new period at once", 20 * time.Second, start.Add(24 * time.Second)},
		{"unchanged keeps the period", 10 * time.Second, start.Add(10 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock, k, tr := newTicker(t, 10*time.Second)
			clock.BlockUntilArmed(start.Add(10 * time.Second))
			clock.Advance(4 * time.Second)
			k.Reset(tc.reset)
			clock.BlockUntilArmed(tc.next)
			clock.Advance(tc.next.Sub(clock.Now()) - time.Nanosecond)
			expectNoTick(t, tr)
			clock.Advance(time.Nanosecond)
			expectTick(t, tr)
			clock.BlockUntilArmed(tc.next.Add(tc.reset))
		})
	}
}

func TestTickerPausedByZeroInterval(t *testing.T) {
	clock, k, tr := newTicker(t, 10*time.Second)
	clock.BlockUntilArmed(start.Add(10 * time.Second))
	k.Reset(0)
	clock.BlockUntilIdle()
	clock.Advance(time.Hour)
	expectNoTick(t, tr)
	k.Reset(time.Second)
	clock.BlockUntilArmed(clock.Now().Add(time.Second))
	clock.Advance(time.Second)
	expectTick(t, tr)
}

func TestTickerStop(t *testing.T) {
	clock, k, tr := newTicker(t, 10*time.Second)
	clock.BlockUntil(1)
	k.Stop()
	if n := clock.Timers(); n != 0 {
		t.Errorf("%d timers armed after Stop", n)
	}
	clock.Advance(time.Hour)
	expectNoTick(t, tr)
	k.Stop() // A second Stop, as t.Cleanup does, returns too.
}

func TestRealClock(t *testing.T) {
	c := watch.RealClock()
	before := time.Now()
	tm := c.NewTimer(time.Millisecond)
	select {
	case got := <-tm.C():
		if got.Before(before) {
			t.Errorf("fired at %v, before it was armed at %v", got, before)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("real timer did not fire")
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	if !c.NewTimer(time.Hour).Stop() {
		t.Error("Stop of an armed timer reported false")
	}
	if now := c.Now(); now.Before(before) {
		t.Errorf("Now %v before %v", now, before)
	}
}
