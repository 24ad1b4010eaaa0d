package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
	"github.com/masqd/masqd/internal/watch/watchtest"
)

// fakeKernel applies a ruleset whole or not at all, like the kernel. It
// also holds ip-masq-agent's chains and runs a monitor.
type fakeKernel struct {
	mu      sync.Mutex
	table   *nft.Ruleset // nil: no table
	errs    []error      // returned by the next syncs, in order
	syncs   int
	commits int

	legacy   []nft.Legacy // ip-masq-agent's chains
	finds    int          // FindLegacy calls
	removals []removal    // CleanupLegacy calls

	monitorErr error       // what the next Monitor returns at once, if not nil
	monitors   chan string // "start" and "stop" of every Monitor call
	onChange   func()      // the running monitor's callback

	ready func() bool // the agent's readiness, recorded with removals
}

// removal is one CleanupLegacy call and what the kernel held then.
type removal struct {
	chains int
	// table is whether masqd's table was there, ready is the agent's
	// readiness at the time.
	table, ready bool
}

func (k *fakeKernel) Sync(_ context.Context, rs *nft.Ruleset) (nft.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.syncs++
	if len(k.errs) > 0 {
		err := k.errs[0]
		k.errs = k.errs[1:]
		if c, ok := err.(afterCommit); ok {
			// The batch was applied; only the answer was lost.
			k.table = rs
			k.commits++
			return nft.Result{}, c.err
		}
		return nft.Result{}, err
	}
	res := nft.Result{Op: nft.OpUpdate}
	switch {
	case k.table == nil:
		res.Op = nft.OpCreate
	case k.table.String() == rs.String():
		return nft.Result{Op: nft.OpNone}, nil
	}
	k.table = rs
	k.commits++
	return res, nil
}

func (k *fakeKernel) Counters(_ context.Context, table, chain string) (*nft.State, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.table == nil {
		return &nft.State{}, nil
	}
	st := &nft.State{Exists: true}
	for i, r := range k.table.Rules {
		st.Rules = append(st.Rules, nft.RuleCounter{Comment: r.Comment, Packets: uint64(10 * (i + 1))})
	}
	return st, nil
}

func (k *fakeKernel) Monitor(ctx context.Context, _ string, onChange func()) error {
	k.mu.Lock()
	err := k.monitorErr
	k.monitorErr = nil
	if err == nil {
		k.onChange = onChange
	}
	k.mu.Unlock()
	k.monitors <- "start"
	if err != nil {
		return err
	}
	<-ctx.Done()
	k.monitors <- "stop"
	return nil
}

// change is the monitor's report that someone changed the table.
func (k *fakeKernel) change() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onChange()
}

func (k *fakeKernel) FindLegacy(context.Context, ...string) ([]nft.Legacy, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.finds++
	return slices.Clone(k.legacy), nil
}

func (k *fakeKernel) CleanupLegacy(_ context.Context, found []nft.Legacy) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.removals = append(k.removals, removal{chains: len(found), table: k.table != nil, ready: k.ready()})
	k.legacy = nil
	return nil
}

func (k *fakeKernel) Delete(context.Context, string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	had := k.table != nil
	k.table = nil
	return had, nil
}

func (k *fakeKernel) text() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.table == nil {
		return ""
	}
	return k.table.String()
}

// afterCommit, as a fakeKernel error, applies the ruleset and then fails,
// as an ENOBUFS on the ack of a committed batch does.
type afterCommit struct{ err error }

func (a afterCommit) Error() string { return a.err.Error() + " after commit" }

// harness runs an agent on a fake kernel, a fake clock and a fake file
// watch, one pass at a time: every test step fires a trigger and waits for
// the pass to finish.
type harness struct {
	t      *testing.T
	a      *Agent
	k      *fakeKernel
	clock  *watchtest.FakeClock
	start  time.Time // where clock stood when Run started
	files  *fakeWatch
	path   string
	passes chan struct{}
	logs   *observer.ObservedLogs
	reg    *prometheus.Registry
	stop   func() // ends Run and waits for it
}

// fakeWatch is a FileWatch that reports no events: tests fire them.
type fakeWatch struct {
	degraded atomic.Bool
	closed   atomic.Bool
}

func (w *fakeWatch) Degraded() bool { return w.degraded.Load() }

func (w *fakeWatch) UpToDate() bool { return !w.degraded.Load() }

func (w *fakeWatch) Close() error {
	w.closed.Store(true)
	return nil
}

func newHarness(t *testing.T, cfg string) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil)
}

// newHarnessWith is newHarness with setup called before the agent starts.
func newHarnessWith(t *testing.T, cfg string, setup func(*Options, *fakeKernel)) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ip-masq-agent")
	if cfg != "" {
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return newHarnessAt(t, path, setup)
}

// newHarnessAt runs an agent on the config at path, a file or a directory.
func newHarnessAt(t *testing.T, path string, setup func(*Options, *fakeKernel)) *harness {
	t.Helper()
	start := time.Unix(1_700_000_000, 0)
	h := &harness{t: t, k: &fakeKernel{monitors: make(chan string, 100)}, clock: watchtest.NewFakeClock(start), start: start,
		files: &fakeWatch{}, path: path, passes: make(chan struct{}, 100), reg: prometheus.NewRegistry()}
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	m := NewMetrics()
	if err := m.Register(h.reg); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		ConfigPath: h.path, Ruleset: nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}, Clock: h.clock, Log: zap.New(core), Metrics: m,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		WatchFiles: func(string, *watch.Trigger, *zap.Logger) (FileWatch, error) { return h.files, nil },
	}
	if setup != nil {
		setup(&opts, h.k)
	}
	h.a = New(h.k, opts)
	h.k.ready = func() bool { ok, _ := h.a.Ready(); return ok }
	h.a.afterPass = func() { h.passes <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.a.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	h.waitPass() // the start pass
	return h
}

func (h *harness) write(cfg string) {
	h.t.Helper()
	if err := os.WriteFile(h.path, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitPass() {
	h.t.Helper()
	select {
	case <-h.passes:
	case <-time.After(5 * time.Second):
		h.t.Fatal("no pass of the loop within 5s")
	}
}

// fileChanged reports a file event, as the watcher would, and waits.
func (h *harness) fileChanged() {
	h.t.Helper()
	h.a.trigger.Fire(watch.ReasonFile)
	h.waitPass()
}

func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func (h *harness) ready() bool {
	ok, _ := h.a.Ready()
	return ok
}

const (
	cfgA = "nonMasqueradeCIDRs: [10.0.0.0/8]\n"
	cfgB = "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24]\n"
	bad  = "nonMasqueradeCIDRs: [10.0.0.1/8]\nresyncIntervl: 5s\n"
)

func TestStartAppliesConfig(t *testing.T) {
	h := newHarness(t, cfgA)
	if !strings.Contains(h.k.text(), "elements = { 10.0.0.0/8 }") {
		t.Fatalf("kernel after start:\n%s", h.k.text())
	}
	if !h.ready() || h.metric("masqd_config_valid") != 1 {
		t.Errorf("ready %v, config_valid %v, want true and 1", h.ready(), h.metric("masqd_config_valid"))
	}
	if got := h.metric("masqd_syncs_total", "result", "success", "op", "create"); got != 1 {
		t.Errorf("create syncs = %v, want 1", got)
	}
	if got := h.metric("masqd_nonmasquerade_intervals", "family", "ipv4"); got != 1 {
		t.Errorf("ipv4 intervals = %v, want 1", got)
	}
}

func TestMissingFileMeansDefaults(t *testing.T) {
	h := newHarness(t, "")
	if !strings.Contains(h.k.text(), "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16") || !h.ready() {
		t.Fatalf("ready %v, kernel:\n%s", h.ready(), h.k.text())
	}
}

func TestReloadOnFileEvent(t *testing.T) {
	h := newHarness(t, cfgA)
	h.write(cfgB)
	h.fileChanged()
	if !strings.Contains(h.k.text(), "192.0.2.0/24") {
		t.Fatalf("kernel after reload:\n%s", h.k.text())
	}
	// An event that changes nothing reloads nothing and commits nothing.
	commits := h.k.commits
	h.fileChanged()
	if h.k.commits != commits || h.metric("masqd_config_loads_total", "result", "unchanged") != 1 {
		t.Errorf("unchanged reload committed %d times, unchanged loads %v", h.k.commits-commits, h.metric("masqd_config_loads_total", "result", "unchanged"))
	}
	if n := h.logs.FilterMessage("config loaded").Len(); n != 2 {
		t.Errorf("%d 'config loaded' lines, want 2 (start and the one real change)", n)
	}
}

func TestInvalidConfigKeepsRules(t *testing.T) {
	h := newHarness(t, cfgA)
	before := h.k.text()
	h.write(bad)
	h.fileChanged()
	if h.k.text() != before {
		t.Fatalf("an invalid config changed the kernel:\n%s", h.k.text())
	}
	if h.ready() || h.metric("masqd_config_valid") != 0 {
		t.Errorf("ready %v, config_valid %v, want false and 0", h.ready(), h.metric("masqd_config_valid"))
	}
	logged := h.logs.FilterMessageSnippet("config invalid").All()
	if len(logged) != 1 || !strings.Contains(logged[0].ContextMap()["error"].(string), h.path) {
		t.Fatalf("want one error line naming %s, got %+v", h.path, logged)
	}
	// The same bad file again is not logged again.
	h.fileChanged()
	if n := h.logs.FilterMessageSnippet("config invalid").Len(); n != 1 {
		t.Errorf("the same error was logged %d times", n)
	}
	// Fixing the file recovers without a restart.
	h.write(cfgB)
	h.fileChanged()
	if !strings.Contains(h.k.text(), "192.0.2.0/24") || !h.ready() || h.metric("masqd_config_valid") != 1 {
		t.Errorf("after the fix: ready %v, kernel:\n%s", h.ready(), h.k.text())
	}
}

func TestInvalidAtStartAppliesNothing(t *testing.T) {
	h := newHarness(t, bad)
	if h.k.syncs != 0 || h.ready() {
		t.Fatalf("invalid first config: %d syncs, ready %v; want none and not ready", h.k.syncs, h.ready())
	}
	h.write(cfgA)
	h.fileChanged()
	if !strings.Contains(h.k.text(), "10.0.0.0/8") || !h.ready() {
		t.Fatalf("after the fix: ready %v, kernel:\n%s", h.ready(), h.k.text())
	}
}

func TestRetryWithBackoff(t *testing.T) {
	h := newHarness(t, cfgA)
	h.k.mu.Lock()
	h.k.table = nil // someone deleted the table...
	h.k.errs = []error{unix.EBUSY, unix.ENOBUFS, unix.EPERM, unix.EBUSY}
	h.k.mu.Unlock()
	h.a.trigger.Fire(watch.ReasonKernel) // ...and the monitor said so
	h.waitPass()
	// Delays double from 100ms and stop at 400ms.
	for i, d := range []time.Duration{100, 200, 400, 400} {
		h.clock.BlockUntil(1)
		h.clock.Advance(d*time.Millisecond - time.Nanosecond)
		select {
		case <-h.passes:
			t.Fatalf("retry %d came before %v", i+1, d*time.Millisecond)
		default:
		}
		h.clock.Advance(time.Nanosecond)
		h.waitPass()
	}
	if h.k.text() == "" || !h.ready() {
		t.Fatalf("not recovered after the errors: ready %v", h.ready())
	}
	if got := h.metric("masqd_syncs_total", "result", "error", "op", "none"); got != 4 {
		t.Errorf("error syncs = %v, want 4", got)
	}
	if got := h.metric("masqd_drift_repairs_total", "kind", "table"); got != 1 {
		t.Errorf("table repairs = %v, want 1", got)
	}
}

// TestRetryAfterLostAck: the kernel applied the batch but the answer was
// an error. The retry finds the table in place and commits nothing again.
func TestRetryAfterLostAck(t *testing.T) {
	h := newHarness(t, cfgA)
	h.k.mu.Lock()
	h.k.table = nil
	h.k.errs = []error{afterCommit{unix.ENOBUFS}}
	commits := h.k.commits
	h.k.mu.Unlock()
	h.a.trigger.Fire(watch.ReasonKernel)
	h.waitPass()
	if h.ready() {
		t.Error("ready right after a failed sync")
	}
	h.clock.BlockUntil(1)
	h.clock.Advance(100 * time.Millisecond)
	h.waitPass()
	if !h.ready() || h.k.commits != commits+1 || !strings.Contains(h.k.text(), "10.0.0.0/8") {
		t.Errorf("ready %v, %d commits (want 1), kernel:\n%s", h.ready(), h.k.commits-commits, h.k.text())
	}
	if got := h.metric("masqd_syncs_total", "result", "success", "op", "none"); got != 1 {
		t.Errorf("no-op syncs = %v, want 1 (the retry)", got)
	}
}

func TestResyncIntervalFromConfig(t *testing.T) {
	h := newHarness(t, "resyncInterval: 5s\n")
	tick := func(d time.Duration) {
		t.Helper()
		syncs := h.k.syncs
		h.clock.BlockUntilArmed(h.clock.Now().Add(d))
		h.clock.Advance(d - time.Millisecond)
		select {
		case <-h.passes:
			t.Fatalf("a pass before the %v tick", d)
		default:
		}
		h.clock.Advance(time.Millisecond)
		h.waitPass()
		if h.k.syncs != syncs+1 {
			t.Fatalf("no sync on the %v tick", d)
		}
	}
	tick(5 * time.Second) // the config's interval applies from the start, not after 60s
	h.write("resyncInterval: 2s\n")
	h.fileChanged()
	tick(2 * time.Second)
	tick(2 * time.Second)
}

func TestHealthAndConnMetrics(t *testing.T) {
	h := newHarness(t, cfgA)
	srv := httptest.NewServer(h.a.HealthHandler())
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	h.write(bad)
	h.fileChanged()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a bad config = %d, want 503", resp.StatusCode)
	}
	want := `
# HELP masqd_rule_connections_total Connections each rule of masqd's chain decided, read from the kernel's counters at scrape time. verdict is masqueraded or exempted; rule names the rule (local, link-local, non-masquerade, ...).
# TYPE masqd_rule_connections_total counter
masqd_rule_connections_total{rule="ipv6-disabled",verdict="exempted"} 40
masqd_rule_connections_total{rule="link-local",verdict="exempted"} 20
masqd_rule_connections_total{rule="local",verdict="exempted"} 10
masqd_rule_connections_total{rule="masquerade",verdict="masqueraded"} 50
masqd_rule_connections_total{rule="non-masquerade",verdict="exempted"} 30
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "masqd_rule_connections_total"); err != nil {
		t.Error(err)
	}
}

// TestDropInsLogged: with a directory, each file's contribution is logged.
func TestDropInsLogged(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"a.yaml": "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\n", "b.yaml": "masqueradeCIDRs: [10.20.0.0/16]\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarnessAt(t, dir, nil)
	var got []string
	for _, e := range h.logs.FilterMessage("config file").All() {
		m := e.ContextMap()
		got = append(got, fmt.Sprintf("%s %v %v", filepath.Base(m["file"].(string)), m["nonMasqueradeCIDRs"], m["masqueradeCIDRs"]))
	}
	if want := []string{"a.yaml 2 0", "b.yaml 0 1"}; !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

// TestProvenanceLogged: each exception is logged with the file and line
// that wrote it, and config warnings are logged too.
func TestProvenanceLogged(t *testing.T) {
	h := newHarness(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs:\n  - 10.20.0.0/16\n  - 203.0.113.0/24\n")
	exc := h.logs.FilterMessage("masqueradeCIDRs exception").All()
	if len(exc) != 2 {
		t.Fatalf("%d exception lines, want 2", len(exc))
	}
	if got := exc[0].ContextMap()["from"]; got != h.path+":3" {
		t.Errorf("first exception from %v, want %s:3", got, h.path)
	}
	warns := h.logs.FilterMessage("config warning").All()
	if len(warns) != 1 || !strings.Contains(warns[0].ContextMap()["warning"].(string), "203.0.113.0/24 is not inside any nonMasqueradeCIDRs entry") {
		t.Errorf("warnings logged: %v", warns)
	}
	if !strings.Contains(h.k.text(), "10.0.0.0-10.19.255.255, 10.21.0.0-10.255.255.255") {
		t.Errorf("kernel:\n%s", h.k.text())
	}
}

func TestDriftKinds(t *testing.T) {
	for _, tc := range []struct {
		res  nft.Result
		want []string
	}{
		{nft.Result{Op: nft.OpCreate}, []string{"table"}},
		{nft.Result{Op: nft.OpReplace}, []string{"schema"}},
		{nft.Result{Op: nft.OpUpdate, Rules: true}, []string{"rules"}},
		{nft.Result{Op: nft.OpUpdate, Sets: []nft.SetChange{{Name: "nomasq-v4", Added: 1}}}, []string{"elements"}},
		{nft.Result{Op: nft.OpUpdate, Rules: true, Sets: []nft.SetChange{{Name: "masq-src-v4", Created: true}, {Name: "extra", Deleted: true}}},
			[]string{"rules", "schema"}},
	} {
		if got := driftKinds(tc.res); !slices.Equal(got, tc.want) {
			t.Errorf("driftKinds(%+v) = %v, want %v", tc.res, got, tc.want)
		}
	}
}
