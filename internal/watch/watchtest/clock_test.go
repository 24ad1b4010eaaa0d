package watchtest

import (
	"sync"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/watch"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fired returns the time a timer sent, or false if it has not fired.
func fired(tm watch.Timer) (time.Time, bool) {
	select {
	case at := <-tm.C():
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestAdvanceFiresDueTimers(t *testing.T) {
	c := NewFakeClock(start)
	late := c.NewTimer(3 * time.Second)
	early := c.NewTimer(time.Second)
	if _, ok := fired(early); ok {
		t.Fatal("fired before Advance")
	}
	c.Advance(time.Second - time.Nanosecond)
	if _, ok := fired(early); ok {
		t.Fatal("fired early")
	}
	c.Advance(time.Nanosecond)
	if at, ok := fired(early); !ok || !at.Equal(start.Add(time.Second)) {
		t.Errorf("early timer: fired %v at %v, want at %v", ok, at, start.Add(time.Second))
	}
	if _, ok := fired(late); ok {
		t.Error("late timer fired early")
	}
	if n := c.Timers(); n != 1 {
		t.Errorf("%d timers armed, want 1", n)
	}
	c.Advance(time.Hour)
	if _, ok := fired(late); !ok {
		t.Error("late timer did not fire")
	}
	if got, want := c.Now(), start.Add(time.Hour+time.Second); !got.Equal(want) {
		t.Errorf("Now = %v, want %v", got, want)
	}
}

func TestStop(t *testing.T) {
	c := NewFakeClock(start)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Error("Stop of an armed timer reported false")
	}
	if tm.Stop() {
		t.Error("second Stop reported true")
	}
	c.Advance(time.Hour)
	if _, ok := fired(tm); ok {
		t.Error("a stopped timer fired")
	}
	done := c.NewTimer(time.Second)
	c.Advance(time.Second)
	if done.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
}

func TestNonPositiveTimerFiresAtOnce(t *testing.T) {
	c := NewFakeClock(start)
	for _, d := range []time.Duration{0, -time.Second} {
		if _, ok := fired(c.NewTimer(d)); !ok {
			t.Errorf("NewTimer(%v) did not fire at once", d)
		}
	}
	if n := c.Timers(); n != 0 {
		t.Errorf("%d timers armed, want 0", n)
	}
}

// TestBlockUntilWakesEveryWaiter has several goroutines wait for timers
// that another arms.
func TestBlockUntilWakesEveryWaiter(t *testing.T) {
	c := NewFakeClock(start)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { c.BlockUntil(2) })
		wg.Go(func() { c.BlockUntilArmed(start.Add(2 * time.Second)) })
	}
	c.NewTimer(time.Second)
	c.NewTimer(2 * time.Second)
	wg.Wait()

	idle := make(chan struct{})
	go func() {
		c.BlockUntilIdle()
		close(idle)
	}()
	c.Advance(2 * time.Second)
	select {
	case <-idle:
	case <-time.After(5 * time.Second):
		t.Fatal("BlockUntilIdle did not return after the timers fired")
	}
}
