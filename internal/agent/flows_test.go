package agent

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/masqd/masqd/internal/conntrack"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
)

// fakeFlows records what the agent asks of conntrack and answers with the
// real changed ranges.
type fakeFlows struct {
	mu      sync.Mutex
	calls   [][2]*nft.Ruleset
	removed map[string]int
	err     error
}

func (f *fakeFlows) Reconcile(_ context.Context, before, after *nft.Ruleset) (conntrack.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [2]*nft.Ruleset{before, after})
	return conntrack.Result{Changes: nft.Changes(before, after), Removed: f.removed, Examined: 100}, f.err
}

func (f *fakeFlows) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// withFlows plugs f into a running harness's agent. The loop is idle
// between passes, and the next trigger orders this write before its read.
func withFlows(h *harness, f *fakeFlows) {
	h.a.opts.Flows = f
}

func TestFlowsAfterConfigChange(t *testing.T) {
	h := newHarness(t, cfgA)
	f := &fakeFlows{removed: map[string]int{"udp": 3, "icmp": 1}}
	withFlows(h, f)

	h.write(cfgB)
	h.fileChanged()
	if f.count() != 1 {
		t.Fatalf("%d reconciles after a config change, want 1", f.count())
	}
	before, after := f.calls[0][0], f.calls[0][1]
	if before.Set(nft.SetV4).Intervals[0].String() != "10.0.0.0/8" || len(after.Set(nft.SetV4).Intervals) != 2 {
		t.Errorf("reconcile got before %v and after %v, want the old and the new ruleset", before.Sets, after.Sets)
	}
	if got := h.metric("masqd_conntrack_entries_removed_total", "protocol", "udp"); got != 3 {
		t.Errorf("removed udp = %v, want 3", got)
	}
	if got := h.metric("masqd_conntrack_entries_removed_total", "protocol", "icmp"); got != 1 {
		t.Errorf("removed icmp = %v, want 1", got)
	}
	synced := h.logs.FilterMessage("synced").All()
	if len(synced) != 2 {
		t.Fatalf("%d 'synced' lines, want 2 (start and change)", len(synced))
	}
	if _, ok := synced[0].ContextMap()["conntrack"]; ok {
		t.Errorf("the first sync's log has conntrack fields: %v", synced[0].ContextMap())
	}
	ct, ok := synced[1].ContextMap()["conntrack"].(map[string]any)
	if !ok || ct["removed"] != int64(4) || ct["changed_range_count"] != int64(1) {
		t.Errorf("sync log's conntrack fields = %v, want removed 4 for 1 changed range", synced[1].ContextMap()["conntrack"])
	}
	if r, _ := ct["changed_ranges"].([]any); len(r) != 1 || r[0] != "192.0.2.0/24" {
		t.Errorf("sync log names changed ranges %v, want [192.0.2.0/24]", ct["changed_ranges"])
	}

	// Nothing changed: a resync, a file event without a change, and a
	// repair of the kernel leave conntrack alone.
	h.a.trigger.Fire(watch.ReasonResync)
	h.waitPass()
	h.fileChanged()
	h.k.mu.Lock()
	h.k.table = nil // someone deleted the table
	h.k.mu.Unlock()
	h.a.trigger.Fire(watch.ReasonKernel)
	h.waitPass()
	if f.count() != 1 {
		t.Errorf("%d reconciles, want still 1: passes that did not change the ruleset called conntrack", f.count())
	}
}

func TestFlowsNotAtFirstSync(t *testing.T) {
	h := newHarness(t, "")
	f := &fakeFlows{}
	withFlows(h, f)
	h.a.trigger.Fire(watch.ReasonResync)
	h.waitPass()
	if f.count() != 0 {
		t.Errorf("%d reconciles without a change of the ruleset, want 0", f.count())
	}
}

func TestFlowsErrorIsCountedAndRulesStay(t *testing.T) {
	h := newHarness(t, cfgA)
	f := &fakeFlows{err: errors.New("netlink: operation not permitted")}
	withFlows(h, f)
	h.write(cfgB)
	h.fileChanged()
	if got := h.metric("masqd_conntrack_reconcile_errors_total"); got != 1 {
		t.Errorf("reconcile errors = %v, want 1", got)
	}
	if n := h.logs.FilterMessage("conntrack reconcile failed; the rules are applied, some open flows keep their old decision").Len(); n != 1 {
		t.Errorf("%d error lines, want 1", n)
	}
	if !h.ready() || h.k.table.Set(nft.SetV4) == nil || len(h.k.table.Set(nft.SetV4).Intervals) != 2 {
		t.Errorf("after a failed reconcile: ready %v, kernel:\n%s", h.ready(), h.k.text())
	}
}
