package watch

import "time"

// Clock is the time source of the ticker and of the agent loop; tests use
// watchtest.FakeClock, whose time moves only when told.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once, d
	// from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer, as time.Timer.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports false when the timer
	// had already fired or been stopped.
	Stop() bool
}

// RealClock returns the system clock.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
