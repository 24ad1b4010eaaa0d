package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/conntrack"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
)

// Kernel is the agent's seam to nftables; *nft.Conn implements it. Like the
// kernel, Sync applies a ruleset whole or not at all. The agent calls Sync,
// FindLegacy and CleanupLegacy from its loop, Monitor from one goroutine of
// its own, and Counters from metric scrapes.
type Kernel interface {
	Sync(ctx context.Context, rs *nft.Ruleset) (nft.Result, error)
	Counters(ctx context.Context, table, chain string) (*nft.State, error)
	// Monitor calls onChange whenever a transaction touched table, until
	// ctx ends (it then returns nil) or it cannot listen any more.
	Monitor(ctx context.Context, table string, onChange func()) error
	// FindLegacy lists ip-masq-agent's chains (nft.LegacyChains and extra)
	// in iptables-nft's nat tables; CleanupLegacy removes them and their
	// jumps from POSTROUTING.
	FindLegacy(ctx context.Context, extra ...string) ([]nft.Legacy, error)
	CleanupLegacy(ctx context.Context, found []nft.Legacy) error
	// Delete deletes the table and reports whether it was there.
	Delete(ctx context.Context, table string) (bool, error)
}

// FileWatch is a running watch of the config path; *watch.Files is one.
type FileWatch interface {
	// Degraded reports whether file events may be missed.
	Degraded() bool
	// UpToDate reports whether every change to the path has been fired:
	// false while Degraded, and while an emptied file is held back.
	UpToDate() bool
	Close() error
}

// WatchFiles starts a FileWatch of path that fires t on changes.
type WatchFiles func(path string, t *watch.Trigger, log *zap.Logger) (FileWatch, error)

func watchFiles(path string, t *watch.Trigger, log *zap.Logger) (FileWatch, error) {
	return watch.WatchFiles(path, t, log)
}

// Options configure an Agent.
type Options struct {
	// ConfigPath is the config file or directory (--config).
	ConfigPath string
	Config     config.Options
	Ruleset    nft.Options
	Clock      watch.Clock
	Log        *zap.Logger
	Metrics    *Metrics
	// WatchFiles starts the config watch when Run starts (default: the
	// inotify watch of internal/watch). While it delivers events, a plain
	// resync tick skips re-reading the config.
	WatchFiles WatchFiles
	// RemoveLegacy removes ip-masq-agent's chains and jumps whenever they
	// are found while masqd is ready (--remove-legacy-rules); otherwise
	// they are only reported.
	RemoveLegacy bool
	// BackoffMin and BackoffMax bound the retry delay after a failed sync.
	BackoffMin, BackoffMax time.Duration
	// Flows, when set, is told after each sync that replaced the ruleset,
	// so that flows already open take the new verdicts.
	Flows Flows
	// CleanupOnExit deletes masqd's table when Run stops
	// (--cleanup-on-exit); by default the rules stay, so pods keep egress
	// while masqd is updated.
	CleanupOnExit bool
	// TranslationLog, when set, runs while Run runs (--translation-log);
	// the agent exports its counts and warns about its losses.
	TranslationLog *conntrack.TranslationLog
}

// Agent converges the kernel on the config, for as long as Run runs. Run
// and Once must not run at the same time; Ready, Alive, HealthHandler and
// the metrics may be called from any goroutine.
type Agent struct {
	k       Kernel
	opts    Options
	log     *zap.Logger
	m       *Metrics
	clock   watch.Clock
	trigger *watch.Trigger // fired by the file watch, the ticker, the monitor and retries

	// Owned by the Run goroutine.
	good     *config.Config   // last valid config; nil until one is read
	applied  *config.Config   // the config of the last successful sync
	hash     string           // nft.ConfigHash of applied
	errText  string           // last config error logged, to log each once
	warnings []config.Problem // last config warnings logged, to log each set once
	failures int
	retry    watch.Timer // pending retry after a failed sync, or nil
	ticker   *watch.Ticker
	monitor  *monitor // the nftables monitor, from the first good sync on
	legacy   legacyState

	mu       sync.Mutex
	ruleset  *nft.Ruleset // last ruleset synced successfully, for metrics
	files    FileWatch    // the config watch, while Run runs
	ready    bool
	notReady string

	busySince atomic.Int64 // unix nanos when the current pass began; 0 when idle

	afterPass func() // test hook: called after every pass
}

// New returns an agent; Run starts it.
func New(k Kernel, opts Options) *Agent {
	if opts.Clock == nil {
		opts.Clock = watch.RealClock()
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.WatchFiles == nil {
		opts.WatchFiles = watchFiles
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	a := &Agent{
		k:        k,
		opts:     opts,
		log:      opts.Log,
		m:        opts.Metrics,
		clock:    opts.Clock,
		trigger:  watch.NewTrigger(),
		notReady: "no sync yet",
	}
	a.m.bind(a)
	if opts.TranslationLog != nil {
		a.m.watchTranslationLog(opts.TranslationLog)
	}
	return a
}

// Run watches the config and loops until ctx ends. It returns nil then:
// stopping leaves the kernel's rules in place, unless CleanupOnExit. It
// returns an error only when the config watch cannot start.
func (a *Agent) Run(ctx context.Context) error {
	defer a.exit()
	files, err := a.opts.WatchFiles(a.opts.ConfigPath, a.trigger, a.log)
	if err != nil {
		return err
	}
	a.setFiles(files)
	defer a.startTranslationLog(ctx)()
	defer func() {
		a.setFiles(nil)
		files.Close()
	}()
	a.ticker = watch.NewTicker(a.clock, config.DefaultResyncInterval, a.trigger)
	defer a.ticker.Stop()
	defer a.stopMonitor()
	defer func() {
		if a.retry != nil {
			a.retry.Stop()
		}
	}()
	a.trigger.Fire(watch.ReasonStart)
	for {
		var retry <-chan time.Time
		if a.retry != nil {
			retry = a.retry.C()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			a.retry = nil
			a.trigger.Fire(watch.ReasonKernel)
		case <-a.trigger.C():
			a.pass(ctx, a.trigger.Take())
		}
	}
}

// exitTimeout bounds the table's deletion on exit.
const exitTimeout = 2 * time.Second

// exit leaves the rules in place when Run stops, or deletes the table with
// Options.CleanupOnExit.
func (a *Agent) exit() {
	table := a.opts.Ruleset.Table
	if !a.opts.CleanupOnExit {
		a.log.Info("stopping; the rules stay in place", zap.String("table", table))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	if _, err := a.k.Delete(ctx, table); err != nil {
		a.log.Error("could not delete the table on exit", zap.Error(err))
	} else {
		a.log.Info("deleted the table on exit (--cleanup-on-exit)", zap.String("table", table))
	}
}

// onceReason is why Once synced, in its log lines.
type onceReason struct{}

func (onceReason) String() string { return "once" }

// Once converges once, without watching or retrying: it reads the config,
// syncs, and looks for ip-masq-agent's rules as a pass of Run does. It
// returns the config's or the kernel's error, which it does not log.
func (a *Agent) Once(ctx context.Context) error {
	cfg, err := config.Load(a.opts.ConfigPath, a.opts.Config)
	if err != nil {
		return err
	}
	a.log.Info("config loaded", zap.String("path", a.opts.ConfigPath), zap.String("summary", cfg.Summary()))
	logProvenance(a.log, cfg)
	a.good = cfg
	if err := a.sync(ctx, onceReason{}); err != nil {
		return err
	}
	a.setReady(true, "")
	a.checkLegacy(ctx)
	return nil
}

// pass is one level-triggered reconcile.
func (a *Agent) pass(ctx context.Context, why watch.Reason) {
	a.busySince.Store(a.clock.Now().UnixNano())
	defer a.busySince.Store(0)

	if a.needsReload(why) {
		a.reload()
	}
	if a.good != nil { // Until something valid is read, apply nothing.
		err := a.sync(ctx, why)
		switch {
		case err == nil:
			if a.errText == "" {
				a.setReady(true, "")
			}
			a.startMonitor(ctx)
		case ctx.Err() == nil:
			a.failed(err)
		}
	}
	if why&(watch.ReasonStart|watch.ReasonResync) != 0 {
		a.legacy.due = true
	}
	if a.legacy.due {
		a.checkLegacy(ctx)
	}
	if a.afterPass != nil {
		a.afterPass()
	}
}

func (a *Agent) needsReload(why watch.Reason) bool {
	if a.good == nil || why&(watch.ReasonStart|watch.ReasonFile) != 0 {
		return true
	}
	if why&watch.ReasonResync != 0 {
		return a.filesStale()
	}
	return false
}

func (a *Agent) setFiles(f FileWatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files = f
}

// filesStale reports whether a resync must re-read the config: no watch,
// one that may miss events, or one holding back an emptied file.
func (a *Agent) filesStale() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files == nil || !a.files.UpToDate()
}

// watchDegraded reports whether the running config watch may miss events.
func (a *Agent) watchDegraded() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files != nil && a.files.Degraded()
}

// reload reads the config; on error the last good one stays.
func (a *Agent) reload() {
	cfg, err := config.Load(a.opts.ConfigPath, a.opts.Config)
	if err != nil {
		a.m.configLoads.WithLabelValues("error").Inc()
		a.m.configValid.Set(0)
		// Bad content and a file that cannot be read are told apart: the
		// fixes differ (edit the file; fix its mode or mount).
		what := "config unreadable"
		var cerr *config.Error
		if errors.As(err, &cerr) {
			what = "config invalid"
		}
		if txt := err.Error(); txt != a.errText {
			a.errText = txt
			msg := what + "; keeping the last good config and the kernel rules"
			if a.good == nil {
				msg = what + "; nothing applied until it is fixed"
			}
			a.log.Error(msg, zap.String("path", a.opts.ConfigPath), zap.Error(err))
		}
		a.setReady(false, what+": "+err.Error())
		return
	}
	a.m.configValid.Set(1)
	a.logWarnings(cfg.Warnings())
	if a.errText != "" {
		a.log.Info("config valid again", zap.String("path", a.opts.ConfigPath))
		a.errText = ""
	}
	if a.good != nil && cfg.Equal(a.good) {
		a.m.configLoads.WithLabelValues("unchanged").Inc()
		return
	}
	a.m.configLoads.WithLabelValues("changed").Inc()
	a.log.Info("config loaded", zap.String("path", a.opts.ConfigPath), zap.String("summary", cfg.Summary()))
	logProvenance(a.log, cfg)
	a.good = cfg
	a.ticker.Reset(cfg.ResyncInterval)
}

// sync applies the last good config and records the outcome in the
// metrics and the log; the caller handles an error.
func (a *Agent) sync(ctx context.Context, why fmt.Stringer) error {
	prev := a.currentRuleset()
	rs := prev
	if rs == nil || a.applied != a.good {
		// Build only for a new config: at 100,000 CIDRs a build costs
		// tens of milliseconds, the no-change check microseconds.
		rs = nft.Build(a.good, a.opts.Ruleset)
	}
	start := a.clock.Now()
	res, err := a.k.Sync(ctx, rs)
	took := a.clock.Now().Sub(start)
	if err != nil {
		if ctx.Err() == nil {
			a.m.observeSync("error", res, took)
		}
		return err
	}
	a.failures = 0
	a.m.observeSync("success", res, took)
	a.m.lastSuccess.Set(float64(a.clock.Now().UnixNano()) / 1e9)
	for _, s := range rs.Sets {
		a.m.intervals.WithLabelValues(s.Family.String()).Set(float64(len(s.Intervals)))
	}
	a.logSync(res, took, why, append(a.configApplied(), a.reconcileFlows(ctx, prev, rs)...))
	a.applied = a.good
	a.mu.Lock()
	a.ruleset = rs
	a.mu.Unlock()
	return nil
}

func (a *Agent) logSync(res nft.Result, took time.Duration, why fmt.Stringer, extra []zap.Field) {
	_, once := why.(onceReason)
	switch {
	case !res.Changed():
		msg, level := "in sync; nothing changed", zap.DebugLevel
		if once { // It is the command's only answer.
			level = zap.InfoLevel
		} else if a.applied == nil {
			// The first pass over a table that a restart left in place: said
			// at info, or a start that reads a large table looks like a hang.
			msg, level = "first sync found the table in sync; nothing changed", zap.InfoLevel
		}
		a.log.Log(level, msg, append([]zap.Field{zap.Bool("cached", res.Cached), zap.Duration("took", took),
			zap.Stringer("reason", why), zap.Uint32("generation", res.Generation)}, extra...)...)
	case a.applied == a.good:
		// Same config as the last good sync: the kernel drifted.
		kinds := driftKinds(res)
		for _, kind := range kinds {
			a.m.drift.WithLabelValues(kind).Inc()
		}
		a.log.Warn("repaired drift in the table", append(append(SyncFields(res, took, why), zap.Strings("drift", kinds)), extra...)...)
	default:
		a.log.Info("synced", append(SyncFields(res, took, why), extra...)...)
	}
}

// failed schedules a retry of a failed sync.
func (a *Agent) failed(err error) {
	a.failures++
	delay := a.backoff()
	a.log.Error("sync failed; will retry", zap.Error(err), zap.Int("failures", a.failures), zap.Duration("retry_in", delay))
	a.setReady(false, "last sync failed: "+err.Error())
	if a.retry != nil {
		a.retry.Stop()
	}
	a.retry = a.clock.NewTimer(delay)
}

// backoff doubles from BackoffMin per consecutive failure, up to BackoffMax.
func (a *Agent) backoff() time.Duration {
	d := a.opts.BackoffMin
	for i := 1; i < a.failures && d < a.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, a.opts.BackoffMax)
}

// SyncFields are the log fields of a sync: what it did, how long it took
// and why it ran.
func SyncFields(res nft.Result, took time.Duration, why fmt.Stringer) []zap.Field {
	f := []zap.Field{
		zap.Stringer("op", res.Op),
		zap.Duration("took", took),
		zap.Stringer("reason", why),
		zap.Bool("rules_rewritten", res.Rules),
		zap.Uint32("generation", res.Generation),
	}
	if res.Reason != "" {
		f = append(f, zap.String("replaced_because", res.Reason))
	}
	for _, s := range res.Sets {
		d := []zap.Field{zap.Int("added", s.Added), zap.Int("removed", s.Removed), zap.Bool("refilled", s.Refilled)}
		if s.Created {
			d = append(d, zap.Bool("created", true))
		}
		if s.Deleted {
			d = append(d, zap.Bool("deleted", true))
		}
		f = append(f, zap.Dict(s.Name, d...))
	}
	return f
}

// driftKinds names what a repair had to fix.
func driftKinds(res nft.Result) []string {
	switch res.Op {
	case nft.OpCreate:
		return []string{"table"}
	case nft.OpReplace:
		return []string{"schema"}
	}
	var kinds []string
	if res.Rules {
		kinds = append(kinds, "rules")
	}
	// A set added or deleted in place is a change of schema; anything
	// else a set went through is a change of its elements.
	schema, elements := false, false
	for _, sc := range res.Sets {
		if sc.Created || sc.Deleted {
			schema = true
		} else {
			elements = true
		}
	}
	if schema {
		kinds = append(kinds, "schema")
	}
	if elements {
		kinds = append(kinds, "elements")
	}
	return kinds
}

func (a *Agent) setReady(ok bool, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ready, a.notReady = ok, why
}

// Ready reports whether the config is valid and the last sync succeeded,
// and if not, why.
func (a *Agent) Ready() (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready, a.notReady
}

// stuckAfter is how long one pass may take before the agent counts as hung.
const stuckAfter = 2 * time.Minute

// Alive reports whether the loop is waiting or making progress.
func (a *Agent) Alive() bool {
	since := a.busySince.Load()
	return since == 0 || a.clock.Now().Sub(time.Unix(0, since)) < stuckAfter
}

func (a *Agent) currentRuleset() *nft.Ruleset {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ruleset
}

// maxProvenanceLogs caps the exceptions logged per config load.
const maxProvenanceLogs = 20

// logProvenance logs what each drop-in file contributed, where each
// exception comes from, and every conflict between files, so that an
// operator can trace a verdict to the file and line that decided it
// (masqd explain names them per address).
func logProvenance(log *zap.Logger, cfg *config.Config) {
	if len(cfg.Files) > 1 {
		for _, c := range cfg.Contributions() {
			log.Info("config file", zap.String("file", c.File), zap.Int(config.NonMasquerade.String(), c.Entries[config.NonMasquerade]),
				zap.Int(config.Masquerade.String(), c.Entries[config.Masquerade]),
				zap.Int(config.MasqueradeSource.String(), c.Entries[config.MasqueradeSource]))
		}
	}
	for i, p := range cfg.MasqueradeCIDRs {
		if i == maxProvenanceLogs {
			log.Info("more masqueradeCIDRs not logged; masqd explain names the entry that decides an address",
				zap.Int("count", len(cfg.MasqueradeCIDRs)-i))
			break
		}
		log.Info("masqueradeCIDRs exception", zap.Stringer("cidr", p), zap.Stringer("from", cfg.Source(config.Masquerade, i)))
	}
}

// logWarnings counts the config's warnings and logs them when they differ
// from the last logged: a typo added beside an unchanged config is logged
// too, and a resync does not repeat them.
func (a *Agent) logWarnings(ws []config.Problem) {
	a.m.configWarns.Set(float64(len(ws)))
	if slices.Equal(ws, a.warnings) {
		return
	}
	a.warnings = ws
	for _, w := range ws {
		a.log.Warn("config warning", zap.String("warning", w.String()))
	}
}
