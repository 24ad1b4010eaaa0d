package agent

import (
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// TestFirstSyncInSyncLogged: a restart over a table already in sync says
// so at info, with how long the read took; later passes that change
// nothing stay at debug.
func TestFirstSyncInSyncLogged(t *testing.T) {
	opts := nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}
	h := newHarnessWith(t, "", func(_ *Options, k *fakeKernel) {
		k.table = nft.Build(config.Default(config.Options{}), opts)
	})
	const msg = "first sync found the table in sync; nothing changed"
	got := h.logs.FilterMessage(msg).All()
	if len(got) != 1 || got[0].Level != zapcore.InfoLevel || got[0].ContextMap()["reason"] != "start" {
		t.Fatalf("want one info line for the first pass with reason start, got %+v; all logs: %+v", got, h.logs.All())
	}
	if _, ok := got[0].ContextMap()["took"]; !ok {
		t.Errorf("the first-pass line has no took field: %+v", got[0].ContextMap())
	}
	h.resync()
	if n := h.logs.FilterMessage(msg).Len(); n != 1 {
		t.Errorf("%d first-pass lines after a second pass, want 1", n)
	}
	if h.k.commits != 0 {
		t.Errorf("%d commits to a table in sync, want 0", h.k.commits)
	}
}
