// Package watchtest has a fake clock for tests of code that uses
// watch.Clock: time moves only when the test calls Advance, and a test
// waits for the code under test to arm its timer with BlockUntil or
// BlockUntilArmed instead of sleeping.
package watchtest

import (
	"slices"
	"sync"
	"time"

	"github.com/masqd/masqd/internal/watch"
)

// FakeClock is a manual clock, safe for concurrent use.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // armed, not yet fired or stopped
	// changed is closed and replaced whenever the armed timers change, so
	// that any number of waiters wake up.
	changed chan struct{}
}

// NewFakeClock returns a clock standing at start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

var _ watch.Clock = (*FakeClock)(nil)

type fakeTimer struct {
	c  *FakeClock
	at time.Time
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

// Stop disarms the timer; false means it had already fired or been stopped.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	t.c.broadcast()
	return true
}

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer arms a timer that fires once Advance reaches now+d. As with
// time.NewTimer, a timer of d <= 0 fires at once.
func (c *FakeClock) NewTimer(d time.Duration) watch.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.broadcast()
	return t
}

// Advance moves time forward by d and fires, in deadline order, every timer
// that is then due. A timer armed in reaction to one of them is armed after
// Advance returns, from the new time, as with a real clock that jumped.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	slices.SortStableFunc(c.timers, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	n := 0
	for _, t := range c.timers {
		if t.at.After(c.now) {
			break
		}
		t.ch <- c.now // Never blocks: the channel has room for the one send.
		n++
	}
	c.timers = slices.Delete(c.timers, 0, n)
	c.broadcast()
}

// broadcast wakes the waiters; c.mu is held.
func (c *FakeClock) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Timers returns how many timers are armed: created, not fired, not stopped.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// BlockUntil waits until at least n timers are armed.
func (c *FakeClock) BlockUntil(n int) {
	c.waitFor(func() bool { return len(c.timers) >= n })
}

// BlockUntilIdle waits until no timer is armed, as after the code under
// test stopped its timer.
func (c *FakeClock) BlockUntilIdle() {
	c.waitFor(func() bool { return len(c.timers) == 0 })
}

// BlockUntilArmed waits until a timer is armed to fire at exactly at: a test
// that advances time must know the code under test armed its timer first.
func (c *FakeClock) BlockUntilArmed(at time.Time) {
	c.waitFor(func() bool {
		return slices.ContainsFunc(c.timers, func(t *fakeTimer) bool { return t.at.Equal(at) })
	})
}

// waitFor waits until cond, called with c.mu held, is true.
func (c *FakeClock) waitFor(cond func() bool) {
	for {
		c.mu.Lock()
		ok, changed := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		<-changed
	}
}
