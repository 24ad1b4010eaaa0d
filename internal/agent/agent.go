package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
)

// Kernel is the agent's seam to nftables; *nft.Conn implements it. Like the
// kernel, Sync applies a ruleset whole or not at all.
type Kernel interface {
	Sync(ctx context.Context, rs *nft.Ruleset) (nft.Result, error)
	Counters(ctx context.Context, table, chain string) (*nft.State, error)
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
	// FilesWatched, when set and true, says that file events are being
	// delivered; a plain resync tick then skips re-reading the config.
	FilesWatched func() bool
	// BackoffMin and BackoffMax bound the retry delay after a failed sync.
	BackoffMin, BackoffMax time.Duration
	// Flows, when set, is told after each sync that replaced the ruleset,
	// so that flows already open take the new verdicts.
	Flows Flows
}

// Agent converges the kernel on the config, for as long as Run runs.
type Agent struct {
	k       Kernel
	opts    Options
	log     *zap.Logger
	m       *Metrics
	clock   watch.Clock
	trigger *watch.Trigger

	// Owned by the Run goroutine.
	good     *config.Config // last valid config; nil until one is read
	applied  *config.Config // the config of the last successful sync
	hash     string         // nft.ConfigHash of applied
	errText  string         // last config error logged, to log each once
	failures int
	retry    watch.Timer // pending retry after a failed sync, or nil
	ticker   *watch.Ticker

	mu       sync.Mutex
	ruleset  *nft.Ruleset // last ruleset synced successfully, for metrics
	ready    bool
	notReady string

	busySince atomic.Int64 // unix nanos when the current pass began; 0 when idle

	firstSync     chan struct{} // closed after the first successful sync
	firstSyncOnce sync.Once

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
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	a := &Agent{
		k:         k,
		opts:      opts,
		log:       opts.Log,
		m:         opts.Metrics,
		clock:     opts.Clock,
		trigger:   watch.NewTrigger(),
		notReady:  "no sync yet",
		firstSync: make(chan struct{}),
	}
	a.m.bind(a)
	return a
}

// FirstSync is closed once a sync has succeeded. Starting the nftables
// monitor only then keeps a large first commit fast: while anyone listens,
// the kernel builds an event for every element of the batch.
func (a *Agent) FirstSync() <-chan struct{} { return a.firstSync }

// Trigger is where file watchers and kernel monitors report changes.
func (a *Agent) Trigger() *watch.Trigger { return a.trigger }

// Run loops until ctx ends. It returns nil then: stopping leaves the kernel's
// rules in place.
func (a *Agent) Run(ctx context.Context) error {
	a.ticker = watch.NewTicker(a.clock, config.DefaultResyncInterval, a.trigger)
	defer a.ticker.Stop()
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

// pass is one level-triggered reconcile.
func (a *Agent) pass(ctx context.Context, why watch.Reason) {
	a.busySince.Store(a.clock.Now().UnixNano())
	defer a.busySince.Store(0)

	if a.needsReload(why) {
		a.reload()
	}
	if a.good != nil { // Until something valid is read, apply nothing.
		a.sync(ctx, why)
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
		return a.opts.FilesWatched == nil || !a.opts.FilesWatched()
	}
	return false
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

func (a *Agent) sync(ctx context.Context, why watch.Reason) {
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
		if ctx.Err() != nil {
			return
		}
		a.m.observeSync("error", res, took)
		a.failures++
		delay := a.backoff()
		a.log.Error("sync failed; will retry", zap.Error(err), zap.Int("failures", a.failures), zap.Duration("retry_in", delay))
		a.setReady(false, "last sync failed: "+err.Error())
		if a.retry != nil {
			a.retry.Stop()
		}
		a.retry = a.clock.NewTimer(delay)
		return
	}
	a.failures = 0
	a.m.observeSync("success", res, took)
	a.m.lastSuccess.Set(float64(a.clock.Now().UnixNano()) / 1e9)
	for _, s := range rs.Sets {
		a.m.intervals.WithLabelValues(s.Family.String()).Set(float64(len(s.Intervals)))
	}
	extra := append(a.configApplied(), a.reconcileFlows(ctx, prev, rs)...)
	if res.Changed() {
		fields := append(SyncFields(res, took, why), extra...)
		if a.applied == a.good {
			// Same config as the last good sync: the kernel drifted.
			for _, kind := range driftKinds(res) {
				a.m.drift.WithLabelValues(kind).Inc()
			}
			a.log.Warn("repaired drift in the table", append(fields, zap.Strings("drift", driftKinds(res)))...)
		} else {
			a.log.Info("synced", fields...)
		}
	} else {
		a.log.Debug("in sync", append([]zap.Field{zap.Bool("cached", res.Cached), zap.Duration("took", took), zap.Stringer("reason", why)}, extra...)...)
	}
	a.applied = a.good
	a.firstSyncOnce.Do(func() { close(a.firstSync) })
	a.mu.Lock()
	a.ruleset = rs
	a.mu.Unlock()
	if a.errText == "" {
		a.setReady(true, "")
	}
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
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w.String()))
	}
}
