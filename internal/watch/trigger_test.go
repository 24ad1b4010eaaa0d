package watch

import (
	"sync"
	"testing"
)

func TestReasonString(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		want string
	}{
		{0, "none"},
		{ReasonStart, "start"},
		{ReasonFile | ReasonResync, "file|resync"},
		{ReasonStart | ReasonFile | ReasonResync | ReasonKernel, "start|file|resync|kernel"},
		{ReasonKernel | ReasonStart, "start|kernel"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("Reason(%d).String() = %q, want %q", uint8(tc.r), got, tc.want)
		}
	}
}

// pending reports whether a wake-up is waiting, without blocking.
func pending(tr *Trigger) bool {
	select {
	case <-tr.C():
		return true
	default:
		return false
	}
}

func TestTriggerCoalesces(t *testing.T) {
	tr := NewTrigger()
	if pending(tr) {
		t.Fatal("a new trigger is pending")
	}
	tr.Fire(ReasonFile)
	tr.Fire(ReasonResync)
	tr.Fire(ReasonFile)
	if !pending(tr) {
		t.Fatal("no wake-up after three fires")
	}
	if r := tr.Take(); r != ReasonFile|ReasonResync {
		t.Errorf("Take = %s, want file|resync", r)
	}
	if pending(tr) {
		t.Error("three fires made more than one wake-up")
	}
	if r := tr.Take(); r != 0 {
		t.Errorf("second Take = %s, want none", r)
	}
}

// TestTriggerFireBetweenReceiveAndTake checks that a Fire after the receive
// lands in the following Take and leaves no empty wake-up behind.
func TestTriggerFireBetweenReceiveAndTake(t *testing.T) {
	tr := NewTrigger()
	tr.Fire(ReasonFile)
	<-tr.C()
	tr.Fire(ReasonKernel)
	if r := tr.Take(); r != ReasonFile|ReasonKernel {
		t.Errorf("Take = %s, want file|kernel", r)
	}
	if pending(tr) {
		t.Error("a wake-up without a reason is pending")
	}
}

// TestTriggerConcurrentFires has many goroutines fire while one receives:
// no Fire blocks, every reason arrives, and no wake-up comes without one.
func TestTriggerConcurrentFires(t *testing.T) {
	tr := NewTrigger()
	reasons := []Reason{ReasonStart, ReasonFile, ReasonResync, ReasonKernel}
	var wg sync.WaitGroup
	for _, r := range reasons {
		wg.Go(func() {
			for range 1000 {
				tr.Fire(r)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	var seen Reason
	for {
		select {
		case <-tr.C():
			r := tr.Take()
			if r == 0 {
				t.Fatal("a wake-up without a reason")
			}
			seen |= r
			continue
		case <-done:
		}
		break
	}
	seen |= tr.Take()
	if want := ReasonStart | ReasonFile | ReasonResync | ReasonKernel; seen != want {
		t.Errorf("seen %s, want %s", seen, want)
	}
}
