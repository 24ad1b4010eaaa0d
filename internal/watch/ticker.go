package watch

import (
	"sync"
	"time"
)

// Ticker fires ReasonResync every interval. Reset starts a new period of
// the new interval at once, so a config that shortens resyncInterval from
// the 60 s default does not wait out the old period. A non-positive
// interval pauses the ticker until a Reset to a positive one.
type Ticker struct {
	mu       sync.Mutex
	interval time.Duration
	reset    chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// NewTicker starts a ticker whose first tick comes one interval from now.
func NewTicker(clock Clock, interval time.Duration, t *Trigger) *Ticker {
	k := &Ticker{interval: interval, reset: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run(clock, t)
	return k
}

func (k *Ticker) run(clock Clock, t *Trigger) {
	defer close(k.done)
	for {
		k.mu.Lock()
		d := k.interval
		k.mu.Unlock()
		var (
			tm   Timer
			tick <-chan time.Time // nil, so never, while paused
		)
		if d > 0 {
			tm = clock.NewTimer(d)
			tick = tm.C()
		}
		select {
		case <-k.stop:
			stopTimer(tm)
			return
		case <-k.reset:
			stopTimer(tm)
		case <-tick:
			t.Fire(ReasonResync)
		}
	}
}

func stopTimer(tm Timer) {
	if tm != nil {
		tm.Stop()
	}
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

// Stop ends the ticker and waits for its goroutine. It may be called more
// than once.
func (k *Ticker) Stop() {
	k.stopOnce.Do(func() { close(k.stop) })
	<-k.done
}
