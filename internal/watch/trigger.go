package watch

import (
	"strings"
	"sync"
)

// Reason is a bitmask of why the loop woke up.
type Reason uint8

// Reasons.
const (
	ReasonStart Reason = 1 << iota
	ReasonFile
	ReasonResync
	ReasonKernel
)

func (r Reason) String() string {
	var parts []string
	for _, n := range []struct {
		r    Reason
		name string
	}{{ReasonStart, "start"}, {ReasonFile, "file"}, {ReasonResync, "resync"}, {ReasonKernel, "kernel"}} {
		if r&n.r != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Trigger is a coalescing wake-up: any number of Fire calls between two
// receives make one wake-up, and Fire never blocks. The receiver takes a
// wake-up from C and then calls Take for its reasons; a wake-up is pending
// exactly when some reason is.
type Trigger struct {
	mu      sync.Mutex // orders Fire and Take, so no wake-up is left without a reason
	ch      chan struct{}
	pending Reason
}

// NewTrigger returns a Trigger with nothing pending.
func NewTrigger() *Trigger { return &Trigger{ch: make(chan struct{}, 1)} }

// Fire records r and wakes the receiver, unless a wake-up is pending
// already.
func (t *Trigger) Fire(r Reason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending |= r
	select {
	case t.ch <- struct{}{}:
	default:
	}
}

// C receives when something was fired.
func (t *Trigger) C() <-chan struct{} { return t.ch }

// Take returns and clears the pending reasons, and with them any wake-up
// fired since the receive: its reasons are in this result.
func (t *Trigger) Take() Reason {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.ch:
	default:
	}
	r := t.pending
	t.pending = 0
	return r
}
