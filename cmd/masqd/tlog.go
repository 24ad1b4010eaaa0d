package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/agent"
	"github.com/masqd/masqd/internal/conntrack"
)

// tlogWarnEvery is how often lost translation-log events are reported.
const tlogWarnEvery = 10 * time.Second

// startTranslationLog starts --translation-log, if set, and returns a
// function that stops it and waits until it has written what it holds.
func startTranslationLog(ctx context.Context, s *settings, m *agent.Metrics, log *zap.Logger) (func(), error) {
	if s.translationLog == "" {
		return func() {}, nil
	}
	var w io.Writer = os.Stdout
	var f *os.File
	if s.translationLog != "-" {
		var err error
		if f, err = os.OpenFile(s.translationLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("--translation-log: %w", err)
		}
		w = f
	}
	tl, err := conntrack.NewTranslationLog(s.netns, w, s.translationLogBuffer)
	if err != nil {
		return nil, err
	}
	m.WatchTranslationLog(tl)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if f != nil {
			defer f.Close()
		}
		if err := tl.Run(ctx); err != nil {
			log.Error("translation log stopped", zap.Error(err))
		}
	}()
	go func() {
		t := time.NewTicker(tlogWarnEvery)
		defer t.Stop()
		var buffer, kernel uint64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			b, k := tl.BufferDrops.Load(), tl.KernelOverflows.Load()
			if b != buffer || k != kernel {
				log.Warn("translation log lost events; raise --translation-log-buffer, or the log cannot keep up",
					zap.Uint64("dropped_while_behind", b-buffer), zap.Uint64("kernel_overflows", k-kernel))
				buffer, kernel = b, k
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
