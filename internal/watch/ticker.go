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

// Ticker fires ReasonResync every interval. Reset changes the interval from
// the next tick on.
type Ticker struct {
	mu       sync.Mutex
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

// NewTicker starts a ticker.
func NewTicker(clock Clock, interval time.Duration, t *Trigger) *Ticker {
	k := &Ticker{interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
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
			case <-tm.C():
				t.Fire(ReasonResync)
			}
		}
	}()
	return k
}

// Reset sets the interval used from the next tick on.
func (k *Ticker) Reset(interval time.Duration) {
	k.mu.Lock()
	k.interval = interval
	k.mu.Unlock()
}

// Stop ends the ticker and waits for its goroutine.
func (k *Ticker) Stop() {
	close(k.stop)
	<-k.done
}
