package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
	"github.com/masqd/masqd/internal/watch/watchtest"
)

// TestFirstSyncInSyncLogged: a restart over a table already in sync says
// so at info, with how long the read took; later passes that change
// nothing stay at debug.
func TestFirstSyncInSyncLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ip-masq-agent") // missing: the defaults
	k := &fakeKernel{table: nft.Build(config.Default(config.Options{}), nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})}
	core, logs := observer.New(zap.InfoLevel)
	passes := make(chan struct{}, 10)
	a := New(k, Options{ConfigPath: path, Ruleset: nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}, Clock: watchtest.NewFakeClock(time.Unix(1_700_000_000, 0)),
		Log: zap.New(core), Metrics: NewMetrics()})
	a.afterPass = func() { passes <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	wait := func() {
		t.Helper()
		select {
		case <-passes:
		case <-time.After(5 * time.Second):
			t.Fatal("no pass of the loop within 5s")
		}
	}
	wait()
	got := logs.FilterMessage("first sync found the table in sync; nothing changed").All()
	if len(got) != 1 || got[0].Level != zapcore.InfoLevel || got[0].ContextMap()["reason"] != "start" {
		t.Fatalf("want one info line for the first pass with reason start, got %+v; all logs: %+v", got, logs.All())
	}
	if _, ok := got[0].ContextMap()["took"]; !ok {
		t.Errorf("the first-pass line has no took field: %+v", got[0].ContextMap())
	}
	a.Trigger().Fire(watch.ReasonResync)
	wait()
	if n := logs.FilterMessage("first sync found the table in sync; nothing changed").Len(); n != 1 {
		t.Errorf("%d first-pass lines after a second pass, want 1", n)
	}
	if k.commits != 0 {
		t.Errorf("%d commits to a table in sync, want 0", k.commits)
	}
}
