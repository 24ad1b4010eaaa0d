package watch

import (
	"sync"
	"time"
)

// Clock is the time source; tests use watchtest.FakeClock.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer.
type Timer interface {
	C() <-chan time.Time
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

// Ticker fires ReasonResync every interval. Reset starts a new period of
// the new interval at once, so a config that shortens resyncInterval from
// the 60 s default does not wait out the old period.
type Ticker struct {
	mu       sync.Mutex
	interval time.Duration
	reset    chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// NewTicker starts a ticker.
func NewTicker(clock Clock, interval time.Duration, t *Trigger) *Ticker {
	k := &Ticker{interval: interval, reset: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		for {
			k.mu.Lock()
			d := k.interval
			k.mu.Unlock()
			tm := clock.NewTimer(d)
			select {
			case <-k.stop:
				tm.Stop()
				return
			case <-k.reset:
				tm.Stop()
			case <-tm.C():
				t.Fire(ReasonResync)
			}
		}
	}()
	return k
}

// Reset starts a period of the new interval now; an unchanged interval
// leaves the current period running.
func (k *Ticker) Reset(interval time.Duration) {
	k.mu.Lock()
	changed := k.interval != interval
	k.interval = interval
	k.mu.Unlock()
	if changed {
		select {
		case k.reset <- struct{}{}:
		default:
		}
	}
}

// Stop ends the ticker and waits for its goroutine.
func (k *Ticker) Stop() {
	close(k.stop)
	<-k.done
}
