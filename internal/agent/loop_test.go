package agent

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// resync fires the next resync tick and waits for its pass. The ticker
// must have kept the default interval since the start, so its ticks fall
// on whole intervals from the start, where the fake clock stood.
func (h *harness) resync() {
	h.t.Helper()
	i := config.DefaultResyncInterval
	next := h.start.Add((h.clock.Now().Sub(h.start)/i + 1) * i)
	h.clock.BlockUntilArmed(next)
	h.clock.Advance(next.Sub(h.clock.Now()))
	h.waitPass()
}

// monitorEvent waits for the fake monitor to start or stop.
func (h *harness) monitorEvent(want string) {
	h.t.Helper()
	select {
	case got := <-h.k.monitors:
		if got != want {
			h.t.Fatalf("monitor %s, want %s", got, want)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatalf("monitor did not %s within 5s", want)
	}
}

// noMonitorEvent checks that the monitor neither started nor stopped.
func (h *harness) noMonitorEvent() {
	h.t.Helper()
	select {
	case got := <-h.k.monitors:
		h.t.Fatalf("unexpected monitor %s", got)
	default:
	}
}

// ipMasqAgent is what ip-masq-agent leaves in iptables-nft's nat tables.
var ipMasqAgent = []nft.Legacy{
	{Family: nft.IPv4, Table: "nat", Chain: "IP-MASQ-AGENT", Rules: 4, Jumps: []uint64{7}},
	{Family: nft.IPv6, Table: "nat", Chain: "IP-MASQ-AGENT", Rules: 3, Jumps: []uint64{9}},
}

func withLegacy(remove bool) func(*Options, *fakeKernel) {
	return func(o *Options, k *fakeKernel) {
		o.RemoveLegacy = remove
		k.legacy = ipMasqAgent
	}
}

// TestMonitorLifecycle: the monitor starts after the first good sync, not
// before; its events trigger a pass that repairs the table; it stops
// before Run returns.
func TestMonitorLifecycle(t *testing.T) {
	h := newHarness(t, bad)
	h.noMonitorEvent()
	if got := h.metric("masqd_nftables_monitor_up"); got != 0 {
		t.Fatalf("monitor_up = %v before any sync", got)
	}
	h.write(cfgA)
	h.fileChanged()
	h.monitorEvent("start")
	if got := h.metric("masqd_nftables_monitor_up"); got != 1 {
		t.Errorf("monitor_up = %v after the first sync, want 1", got)
	}

	h.k.mu.Lock()
	h.k.table = nil // someone deletes the table
	h.k.mu.Unlock()
	h.k.change()
	h.waitPass()
	if !strings.Contains(h.k.text(), "10.0.0.0/8") || h.metric("masqd_drift_repairs_total", "kind", "table") != 1 {
		t.Fatalf("the monitor's event did not repair the table:\n%s", h.k.text())
	}
	h.fileChanged()
	h.noMonitorEvent() // one monitor, not one per sync

	h.stop()
	select {
	case got := <-h.k.monitors:
		if got != "stop" {
			t.Fatalf("monitor %s, want stop", got)
		}
	default:
		t.Fatal("Run returned with the monitor still running")
	}
	if !h.files.closed.Load() {
		t.Error("Run returned with the file watch open")
	}
}

// TestMonitorRestarted: a monitor that fails is logged, reported by the
// gauge, and started again by the next successful sync.
func TestMonitorRestarted(t *testing.T) {
	h := newHarnessWith(t, cfgA, func(_ *Options, k *fakeKernel) { k.monitorErr = errors.New("join nftables group: EPERM") })
	h.monitorEvent("start")
	select { // No pass runs: reading the loop's monitor is safe.
	case <-h.a.monitor.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the failed monitor's goroutine did not end within 5s")
	}
	if got := h.metric("masqd_nftables_monitor_up"); got != 0 {
		t.Errorf("monitor_up = %v after the monitor failed, want 0", got)
	}
	warned := h.logs.FilterMessage("nftables monitor stopped; drift is found on the next resync").All()
	if len(warned) != 1 || warned[0].ContextMap()["error"] != "join nftables group: EPERM" {
		t.Fatalf("logged %+v, want one warning with the error", warned)
	}
	h.fileChanged()
	h.monitorEvent("start")
	if got := h.metric("masqd_nftables_monitor_up"); got != 1 {
		t.Errorf("monitor_up = %v after the restart, want 1", got)
	}
}

// TestLegacyReported: without --remove-legacy-rules, ip-masq-agent's
// chains are counted on the start and every resync, logged once, and left.
func TestLegacyReported(t *testing.T) {
	h := newHarnessWith(t, cfgA, withLegacy(false))
	if got := h.metric("masqd_legacy_ip_masq_agent_chains"); got != 2 {
		t.Errorf("legacy chains = %v, want 2", got)
	}
	warned := h.logs.FilterMessageSnippet("ip-masq-agent's rules are still installed").All()
	if len(warned) != 2 || warned[0].ContextMap()["leftover"] != "ip nat chain IP-MASQ-AGENT (4 rules, 1 jump from POSTROUTING)" ||
		!strings.Contains(warned[1].ContextMap()["iptables_equivalent"].(string), "ip6tables-nft -t nat -X IP-MASQ-AGENT") {
		t.Fatalf("warnings: %+v", warned)
	}
	// File and kernel events do not look; the resync does, and does not
	// warn again.
	h.fileChanged()
	if h.k.finds != 1 {
		t.Errorf("%d lookups after a file event, want 1 (the start)", h.k.finds)
	}
	h.resync()
	if h.k.finds != 2 || h.logs.FilterMessageSnippet("ip-masq-agent's rules are still installed").Len() != 2 {
		t.Errorf("after a resync: %d lookups (want 2), warnings %d (want 2)", h.k.finds, h.logs.FilterMessageSnippet("still installed").Len())
	}
	if len(h.k.removals) != 0 {
		t.Errorf("removed without --remove-legacy-rules: %+v", h.k.removals)
	}
	// Once someone removes them, the gauge follows on the next resync.
	h.k.mu.Lock()
	h.k.legacy = nil
	h.k.mu.Unlock()
	h.resync()
	if got := h.metric("masqd_legacy_ip_masq_agent_chains"); got != 0 {
		t.Errorf("legacy chains = %v after their removal, want 0", got)
	}
}

// TestRemoveLegacyAfterFirstSync: with an invalid config at start nothing
// is synced, and ip-masq-agent's rules stay; the pass that first syncs
// masqd's table removes them.
func TestRemoveLegacyAfterFirstSync(t *testing.T) {
	h := newHarnessWith(t, bad, withLegacy(true))
	if len(h.k.removals) != 0 || h.metric("masqd_legacy_ip_masq_agent_chains") != 2 {
		t.Fatalf("before any sync: removals %+v, gauge %v; want none and 2", h.k.removals, h.metric("masqd_legacy_ip_masq_agent_chains"))
	}
	waiting := h.logs.FilterMessage("ip-masq-agent's rules stay until masqd is ready").All()
	if len(waiting) != 1 || !strings.HasPrefix(waiting[0].ContextMap()["not_ready"].(string), "config invalid: ") {
		t.Fatalf("logged %+v, want one line saying why masqd is not ready", waiting)
	}
	h.write(cfgA)
	h.fileChanged()
	want := []removal{{chains: 2, table: true, ready: true}}
	if !slices.Equal(h.k.removals, want) {
		t.Fatalf("removals %+v, want %+v", h.k.removals, want)
	}
	if h.metric("masqd_legacy_rules_removed_total") != 2 || h.metric("masqd_legacy_ip_masq_agent_chains") != 0 {
		t.Errorf("removed_total %v (want 2), chains %v (want 0)", h.metric("masqd_legacy_rules_removed_total"), h.metric("masqd_legacy_ip_masq_agent_chains"))
	}
	removed := h.logs.FilterMessageSnippet("removed ip-masq-agent's rules").All()
	if len(removed) != 2 || removed[0].ContextMap()["removed"] != "ip nat chain IP-MASQ-AGENT (4 rules, 1 jump from POSTROUTING)" {
		t.Errorf("logged %+v", removed)
	}
}

// TestRemoveLegacyNotWhileNotReady: a failed sync, or a config that went
// bad, keeps ip-masq-agent's rules, however often they are seen; they go
// in the pass that makes masqd ready again.
func TestRemoveLegacyNotWhileNotReady(t *testing.T) {
	h := newHarnessWith(t, cfgA, func(o *Options, k *fakeKernel) {
		withLegacy(true)(o, k)
		k.errs = []error{errors.New("EBUSY")}
	})
	if len(h.k.removals) != 0 || h.ready() {
		t.Fatalf("after a failed first sync: ready %v, removals %+v", h.ready(), h.k.removals)
	}
	h.clock.BlockUntil(2) // the retry and the ticker
	h.clock.Advance(100 * time.Millisecond)
	h.waitPass()
	if want := []removal{{chains: 2, table: true, ready: true}}; !slices.Equal(h.k.removals, want) {
		t.Fatalf("after the retry synced: removals %+v, want %+v", h.k.removals, want)
	}

	// ip-masq-agent comes back (its DaemonSet was re-applied) while the
	// config is bad.
	h.write(bad)
	h.fileChanged()
	h.k.mu.Lock()
	h.k.legacy = ipMasqAgent[:1]
	h.k.mu.Unlock()
	h.resync()
	h.resync()
	if len(h.k.removals) != 1 || h.metric("masqd_legacy_ip_masq_agent_chains") != 1 {
		t.Fatalf("not ready: removals %+v, gauge %v; want the first only, and 1", h.k.removals, h.metric("masqd_legacy_ip_masq_agent_chains"))
	}
	h.write(cfgA)
	h.fileChanged()
	if want := []removal{{2, true, true}, {1, true, true}}; !slices.Equal(h.k.removals, want) {
		t.Fatalf("after the fix: removals %+v, want %+v", h.k.removals, want)
	}
}

// TestWatchDegraded: while the file watch may miss events, the gauge says
// so and every resync re-reads the config; while it works, a resync does
// not.
func TestWatchDegraded(t *testing.T) {
	h := newHarness(t, cfgA)
	h.resync()
	if got := h.metric("masqd_config_loads_total", "result", "unchanged"); got != 0 || h.metric("masqd_config_watch_degraded") != 0 {
		t.Fatalf("with a working watch: %v unchanged loads, degraded %v; want 0 and 0", got, h.metric("masqd_config_watch_degraded"))
	}
	h.files.degraded.Store(true)
	h.write(cfgB) // no event arrives
	h.resync()
	if !strings.Contains(h.k.text(), "192.0.2.0/24") || h.metric("masqd_config_watch_degraded") != 1 {
		t.Errorf("degraded %v; kernel after the resync:\n%s", h.metric("masqd_config_watch_degraded"), h.k.text())
	}
}

// TestOnce: one pass that returns its errors instead of retrying, and
// removes ip-masq-agent's rules only after its sync succeeded.
func TestOnce(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		syncErr   error
		wantErr   string
		removals  int
	}{
		{"good", cfgA, nil, "", 1},
		{"invalid config", bad, nil, "host bits set", 0},
		{"sync fails", cfgA, errors.New("EBUSY"), "EBUSY", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(path, []byte(tc.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			k := &fakeKernel{legacy: ipMasqAgent}
			if tc.syncErr != nil {
				k.errs = []error{tc.syncErr}
			}
			a := New(k, Options{ConfigPath: path, Ruleset: nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}, RemoveLegacy: true})
			k.ready = func() bool { ok, _ := a.Ready(); return ok }
			err := a.Once(context.Background())
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Once = %v, want an error containing %q", err, tc.wantErr)
			}
			if len(k.removals) != tc.removals || (tc.removals > 0 && k.removals[0] != removal{chains: 2, table: true, ready: true}) {
				t.Errorf("removals %+v, want %d after a sync", k.removals, tc.removals)
			}
		})
	}
}

// TestCleanupLegacy: the removal behind `masqd cleanup --legacy` refuses,
// removing nothing, while masqd's chain is not in the kernel, unless forced.
func TestCleanupLegacy(t *testing.T) {
	opts := nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}
	rs := nft.Build(&config.Config{}, opts)
	for _, tc := range []struct {
		name           string
		table          *nft.Ruleset
		legacy         []nft.Legacy
		force, refused bool
		removed        int
	}{
		{"no table", nil, ipMasqAgent, false, true, 0},
		{"no table, forced", nil, ipMasqAgent, true, false, 2},
		{"synced", rs, ipMasqAgent, false, false, 2},
		{"nothing to remove", nil, nil, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &fakeKernel{table: tc.table, legacy: tc.legacy, ready: func() bool { return false }}
			removed, err := CleanupLegacy(context.Background(), k, opts, tc.force)
			var nerr *NotInKernelError
			if errors.As(err, &nerr) != tc.refused || (err != nil && !tc.refused) {
				t.Fatalf("err = %v, want refused %v", err, tc.refused)
			}
			if tc.refused && err.Error() != "masqd's chain postrouting of table inet masqd is not in the kernel" {
				t.Errorf("refusal says %q", err)
			}
			if len(removed) != tc.removed || len(k.removals) != min(tc.removed, 1) || (tc.removed > 0 && len(k.legacy) != 0) {
				t.Errorf("removed %v, kernel calls %+v, left %v", removed, k.removals, k.legacy)
			}
		})
	}
}

// TestMetricsHandler: the handler serves masqd's metrics with Go's.
func TestMetricsHandler(t *testing.T) {
	h, err := NewMetrics().Handler()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"\nmasqd_config_valid 0\n", "\nmasqd_legacy_rules_removed_total 0\n", "\ngo_goroutines "} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("no %q in:\n%s", strings.TrimSpace(want), rec.Body.String())
		}
	}
}

// TestExit: when Run stops, the table stays, or with CleanupOnExit is
// deleted; each is logged.
func TestExit(t *testing.T) {
	for _, cleanup := range []bool{false, true} {
		h := newHarnessWith(t, "", func(o *Options, _ *fakeKernel) { o.CleanupOnExit = cleanup })
		if h.k.text() == "" {
			t.Fatal("no table after the start pass")
		}
		h.stop()
		msg := "stopping; the rules stay in place"
		if cleanup {
			msg = "deleted the table on exit (--cleanup-on-exit)"
		}
		if got := h.k.text() != ""; got == cleanup {
			t.Errorf("CleanupOnExit %v: table there after Run: %v", cleanup, got)
		}
		if n := h.logs.FilterMessage(msg).FilterField(zap.String("table", nft.DefaultTable)).Len(); n != 1 {
			t.Errorf("CleanupOnExit %v: %d log entries %q with the table, want 1", cleanup, n, msg)
		}
	}
}
