package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/masqd/masqd/internal/nft"
)

// Metrics are masqd's Prometheus metrics. Register them with Register.
type Metrics struct {
	syncs        *prometheus.CounterVec
	syncDuration *prometheus.HistogramVec
	lastSuccess  prometheus.Gauge
	configLoads  *prometheus.CounterVec
	configValid  prometheus.Gauge
	configWarns  prometheus.Gauge
	drift        *prometheus.CounterVec
	intervals    *prometheus.GaugeVec
	conns        *connCollector
	monitorUp    prometheus.Gauge
	watchDegrade prometheus.GaugeFunc
	legacyChains prometheus.Gauge
	// legacyRemoved counts ip-masq-agent chains removed with their jumps.
	legacyRemoved prometheus.Counter
	flows         flowMetrics
	configInfo    *prometheus.GaugeVec
}

// NewMetrics creates the metrics, unregistered.
func NewMetrics() *Metrics {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "masqd_syncs_total",
			Help: "Syncs of the nftables table, by result (success, error) and what the batch did (none, create, replace, update).",
		}, []string{"result", "op"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "masqd_sync_duration_seconds",
			Help:    "Time one sync took, from building the ruleset's batch to the kernel's answer, by result.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "masqd_last_successful_sync_timestamp_seconds",
			Help: "Unix time of the last successful sync.",
		}),
		configLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "masqd_config_loads_total",
			Help: "Config reads, by result: changed, unchanged, error (the last good config stays).",
		}, []string{"result"}),
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "masqd_config_valid",
			Help: "1 if the last config read was valid, 0 if not.",
		}),
		configWarns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "masqd_config_warnings",
			Help: "Warnings about the last valid config read: what ip-masq-agent accepted and masqd applies the same way, but should be written otherwise (masqd check lists them).",
		}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "masqd_drift_repairs_total",
			Help: "Repairs of changes someone else made to masqd's table, by kind: table, schema, rules, elements.",
		}, []string{"kind"}),
		intervals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "masqd_nonmasquerade_intervals",
			Help: "Intervals in the non-masquerade set after merging, by family.",
		}, []string{"family"}),
		conns: &connCollector{desc: prometheus.NewDesc(
			"masqd_rule_connections_total",
			"Connections each rule of masqd's chain decided, read from the kernel's counters at scrape time. verdict is masqueraded or exempted; rule names the rule (local, link-local, non-masquerade, ...).",
			[]string{"rule", "verdict"}, nil)},
		monitorUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "masqd_nftables_monitor_up",
			Help: "1 while the nftables monitor reports changes to masqd's table at once; 0 before the first sync and after it failed (drift is then found on the resync interval).",
		}),
		legacyChains: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "masqd_legacy_ip_masq_agent_chains",
			Help: "ip-masq-agent chains still installed in iptables-nft's nat tables, as of the last resync; remove them with masqd cleanup --legacy or --remove-legacy-rules.",
		}),
		legacyRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "masqd_legacy_rules_removed_total",
			Help: "ip-masq-agent chains removed, with their jumps from POSTROUTING, by --remove-legacy-rules once masqd's table was in sync.",
		}),
		flows:      newFlowMetrics(),
		configInfo: newConfigInfo(),
	}
	m.watchDegrade = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "masqd_config_watch_degraded",
		Help: "1 while file events may be missed (inotify failed or overflowed): config changes then wait for the resync interval.",
	}, func() float64 {
		if a := m.conns.agent; a != nil && a.watchDegraded() {
			return 1
		}
		return 0
	})
	return m
}

// Handler serves the metrics, with the Go runtime's and the process's, in
// Prometheus' text format. Call it once.
func (m *Metrics) Handler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	if err := m.Register(reg); err != nil {
		return nil, err
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// Register adds the metrics to r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range append([]prometheus.Collector{m.syncs, m.syncDuration, m.lastSuccess, m.configLoads, m.configValid, m.configWarns, m.drift, m.intervals, m.conns,
		m.monitorUp, m.watchDegrade, m.legacyChains, m.legacyRemoved, m.configInfo}, m.flows.collectors()...) {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) bind(a *Agent) { m.conns.agent = a }

func (m *Metrics) observeSync(result string, res nft.Result, took time.Duration) {
	m.syncs.WithLabelValues(result, res.Op.String()).Inc()
	m.syncDuration.WithLabelValues(result).Observe(took.Seconds())
}

// connCollector reads the rule counters from the kernel at scrape time.
type connCollector struct {
	desc  *prometheus.Desc
	agent *Agent
}

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.agent
	if a == nil {
		return
	}
	rs := a.currentRuleset()
	if rs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := a.k.Counters(ctx, rs.Table, rs.Chain)
	if err != nil || !st.Exists || len(st.Rules) != len(rs.Rules) {
		return // A sync will repair the table; report nothing half-true.
	}
	for i, r := range rs.Rules {
		if st.Rules[i].Comment != r.Comment {
			return
		}
		verdict := "exempted"
		if r.Masquerade {
			verdict = "masqueraded"
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(st.Rules[i].Packets), r.Name, verdict)
	}
}
