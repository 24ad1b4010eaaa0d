package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/nft"
)

func newConfigInfo() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "masqd_config_info",
		Help: "1, labelled with the hash of the config this node applied (merged lists and settings, not per-node flags such as --snat-address); count by (hash) shows how far a change has rolled out.",
	}, []string{"hash"})
}

// configApplied runs after a successful sync. When the sync applied a
// config that differs from the last one applied, it moves
// masqd_config_info to the config's hash and returns the field that names
// it in the sync's log.
func (a *Agent) configApplied() []zap.Field {
	if a.applied == a.good {
		return nil
	}
	h := nft.ConfigHash(a.good, a.opts.Ruleset)
	if h != a.hash {
		if a.hash != "" {
			a.m.configInfo.DeleteLabelValues(a.hash)
		}
		a.m.configInfo.WithLabelValues(h).Set(1)
		a.hash = h
	}
	return []zap.Field{zap.String("config_hash", h)}
}
