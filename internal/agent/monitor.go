package agent

import (
	"context"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/watch"
)

// monitor is the goroutine that runs Kernel.Monitor.
type monitor struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Monitor has returned
}

// startMonitor starts the nftables monitor unless it runs. It is called
// after a successful sync, never before the first: while anyone listens,
// the kernel builds an event for every element of a batch, and a large
// first commit would pay for them. A monitor that stopped on an error is
// started again by the next successful sync; until then drift is found on
// the resync ticks.
func (a *Agent) startMonitor(ctx context.Context) {
	if a.monitor != nil {
		select {
		case <-a.monitor.done:
		default:
			return // still running
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{cancel: cancel, done: make(chan struct{})}
	a.monitor = m
	a.m.monitorUp.Set(1)
	go func() {
		defer close(m.done)
		err := a.k.Monitor(ctx, a.opts.Ruleset.Table, func() { a.trigger.Fire(watch.ReasonKernel) })
		if err != nil && ctx.Err() == nil {
			a.log.Warn("nftables monitor stopped; drift is found on the next resync", zap.Error(err))
		}
		a.m.monitorUp.Set(0)
	}()
}

// stopMonitor stops the monitor, if one was started, and waits for it.
func (a *Agent) stopMonitor() {
	if a.monitor == nil {
		return
	}
	a.monitor.cancel()
	<-a.monitor.done
}
