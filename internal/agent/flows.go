package agent

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/conntrack"
	"github.com/masqd/masqd/internal/nft"
)

// Flows moves flows that are already open to the verdicts of a new
// ruleset; *conntrack.Conn implements it. Like Kernel, it is a seam that
// tests fake.
type Flows interface {
	Reconcile(ctx context.Context, before, after *nft.Ruleset) (conntrack.Result, error)
}

// flowsTimeout bounds one reconcile. The rules are in place before it
// starts; it only holds up the next pass.
const flowsTimeout = 5 * time.Second

// maxLoggedRanges caps the changed ranges named in one log line.
const maxLoggedRanges = 20

// flowMetrics count what reconciling conntrack did.
type flowMetrics struct {
	removed *prometheus.CounterVec
	errors  prometheus.Counter
	tlog    []prometheus.Collector // set by watchTranslationLog
}

func newFlowMetrics() flowMetrics {
	return flowMetrics{
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "masqd_conntrack_entries_removed_total",
			Help: "Conntrack entries removed after a sync because their destination's verdict changed, by protocol (udp, icmp, tcp, ...).",
		}, []string{"protocol"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "masqd_conntrack_reconcile_errors_total",
			Help: "Reconciles of conntrack after a sync that failed in part or whole; the rules stay applied, the flows listed in the log keep their old decision.",
		}),
	}
}

func (m flowMetrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.removed, m.errors}, m.tlog...)
}

// watchTranslationLog exports tl's counts (--translation-log); New calls it,
// so Handler must come after New.
func (m *Metrics) watchTranslationLog(tl *conntrack.TranslationLog) {
	const lines, lost = "Lines written to the translation log.",
		"Translation log losses: events dropped while the writer was behind (where=buffer), or times the kernel dropped an unknown number of events (where=kernel)."
	counter := func(name, help, label, value string, n *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: value}},
			func() float64 { return float64(n.Load()) })
	}
	m.flows.tlog = []prometheus.Collector{
		counter("masqd_translation_log_lines_total", lines, "event", "start", &tl.Starts),
		counter("masqd_translation_log_lines_total", lines, "event", "end", &tl.Ends),
		counter("masqd_translation_log_lost_total", lost, "where", "buffer", &tl.BufferDrops),
		counter("masqd_translation_log_lost_total", lost, "where", "kernel", &tl.KernelOverflows),
	}
}

// reconcileFlows runs after a successful sync that applied after in place
// of before (nil at the first sync: what the kernel held then is not
// known, and nothing is removed). It returns fields for the sync's log.
func (a *Agent) reconcileFlows(ctx context.Context, before, after *nft.Ruleset) []zap.Field {
	if a.opts.Flows == nil || before == nil || before == after {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, flowsTimeout)
	defer cancel()
	res, err := a.opts.Flows.Reconcile(ctx, before, after)
	for proto, n := range res.Removed {
		a.m.flows.removed.WithLabelValues(proto).Add(float64(n))
	}
	if len(res.Changes) == 0 && err == nil {
		return nil
	}
	ranges := make([]string, 0, min(len(res.Changes), maxLoggedRanges))
	for _, c := range res.Changes[:min(len(res.Changes), maxLoggedRanges)] {
		ranges = append(ranges, c.Interval.String())
	}
	fields := []zap.Field{zap.Dict("conntrack",
		zap.Strings("changed_ranges", ranges),
		zap.Int("changed_range_count", len(res.Changes)),
		zap.Int("examined", res.Examined),
		zap.Int("removed", res.Total()),
		zap.Any("removed_by_protocol", res.Removed),
		zap.Duration("took", res.Took),
	)}
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) { // Not when masqd stops.
		a.m.flows.errors.Inc()
		a.log.Error("conntrack reconcile failed; the rules are applied, some open flows keep their old decision",
			zap.Error(err), zap.Int("failed", res.Failed))
	}
	return fields
}
