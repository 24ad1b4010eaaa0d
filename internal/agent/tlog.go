package agent

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// tlogWarnEvery is how often lost translation-log events are reported.
const tlogWarnEvery = 10 * time.Second

// startTranslationLog runs Options.TranslationLog, if set, and reports its
// losses every tlogWarnEvery. The returned function stops both and waits
// until the log has written what it holds.
func (a *Agent) startTranslationLog(ctx context.Context) (stop func()) {
	tl := a.opts.TranslationLog
	if tl == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := tl.Run(ctx); err != nil {
			a.log.Error("translation log stopped", zap.Error(err))
		}
	}()
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		a.reportTranslationLogLosses(done)
	}()
	return func() { cancel(); <-done; <-reported }
}

// reportTranslationLogLosses warns, every tlogWarnEvery until done closes,
// about the events the translation log lost since the last warning.
func (a *Agent) reportTranslationLogLosses(done <-chan struct{}) {
	tl := a.opts.TranslationLog
	var buffer, kernel uint64
	for {
		t := a.clock.NewTimer(tlogWarnEvery)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C():
		}
		b, k := tl.BufferDrops.Load(), tl.KernelOverflows.Load()
		if b != buffer || k != kernel {
			a.log.Warn("translation log lost events; raise --translation-log-buffer, or the log cannot keep up",
				zap.Uint64("dropped_while_behind", b-buffer), zap.Uint64("kernel_overflows", k-kernel))
			buffer, kernel = b, k
		}
	}
}
