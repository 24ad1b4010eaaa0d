package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/agent"
	"github.com/masqd/masqd/internal/conntrack"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/internal/watch"
)

// runAgent runs until SIGTERM/SIGINT and leaves the rules in place, unless
// --cleanup-on-exit.
func runAgent(ctx context.Context, s *settings, log *zap.Logger) error {
	opts, err := s.rulesetOptions()
	if err != nil {
		return err
	}
	c, err := openKernel(s)
	if err != nil {
		return err
	}
	defer c.Close()
	warnForeignSNAT(s, opts, log)
	var flows agent.Flows
	ct, err := openFlows(s)
	if err != nil {
		return err
	}
	if ct != nil {
		defer ct.Close()
		flows = ct
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := agent.NewMetrics()
	if err := m.Register(reg); err != nil {
		return err
	}
	legacy := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "masqd_legacy_ip_masq_agent_chains",
		Help: "ip-masq-agent chains still installed in iptables-nft's nat tables; remove them with masqd cleanup --legacy.",
	})
	reg.MustRegister(legacy)

	var files *watch.Files
	a := agent.New(c, agent.Options{
		ConfigPath: s.configPath, Config: s.configOptions(), Ruleset: opts, Log: log, Metrics: m,
		FilesWatched: func() bool { return files != nil && !files.Degraded() },
		Flows:        flows,
	})
	files, err = watch.WatchFiles(s.configPath, a.Trigger(), log)
	if err != nil {
		return err
	}
	defer files.Close()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "masqd_config_watch_degraded",
		Help: "1 while file events may be missed (inotify failed or overflowed): config changes then wait for the resync interval.",
	}, func() float64 {
		if files.Degraded() {
			return 1
		}
		return 0
	}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopTlog, err := startTranslationLog(ctx, s, reg, log)
	if err != nil {
		return err
	}
	defer stopTlog()
	go func() {
		select {
		case <-a.FirstSync():
		case <-ctx.Done():
			return
		}
		err := c.Monitor(ctx, opts.Table, func() { a.Trigger().Fire(watch.ReasonKernel) })
		if err != nil {
			log.Warn("nftables monitor stopped; drift is found on the next resync", zap.Error(err))
		}
	}()
	go func() {
		// ip-masq-agent's leftovers: warned about once, counted on every resync.
		warned := false
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			found, err := c.FindLegacy(ctx, legacyExtra(s)...)
			if err == nil {
				legacy.Set(float64(len(found)))
				if len(found) > 0 && !warned {
					warned = warnLegacy(ctx, c, s, log) > 0
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	for _, srv := range []struct {
		name, addr string
		h          http.Handler
	}{{"metrics", s.metricsAddr, metricsMux}, {"health", s.healthAddr, a.HealthHandler()}} {
		if srv.addr == "" || srv.addr == "0" {
			continue
		}
		ln, err := net.Listen("tcp", srv.addr)
		if err != nil {
			return fmt.Errorf("listen for %s on %s: %w", srv.name, srv.addr, err)
		}
		hs := &http.Server{Handler: srv.h, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", zap.String("server", srv.name), zap.Error(err))
			}
		}()
		defer hs.Close()
	}
	log.Info("masqd started", zap.String("version", versionString()), zap.String("config", s.configPath),
		zap.String("table", opts.Table), zap.Bool("ipv6", opts.EnableIPv6), zap.String("conntrack_reconcile", s.conntrackReconcile))

	runErr := a.Run(ctx)
	if s.cleanupOnExit {
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		if _, err := c.Delete(dctx, opts.Table); err != nil {
			log.Error("could not delete the table on exit", zap.Error(err))
		} else {
			log.Info("deleted the table on exit (--cleanup-on-exit)", zap.String("table", opts.Table))
		}
	} else {
		log.Info("stopping; the rules stay in place", zap.String("table", opts.Table))
	}
	return runErr
}

// openFlows returns what reconciles conntrack after a ruleset change, or
// nil with --conntrack-reconcile=off.
func openFlows(s *settings) (*conntrack.Conn, error) {
	mode, err := conntrack.ParseMode(s.conntrackReconcile)
	if err != nil || mode == conntrack.Off {
		return nil, err
	}
	return conntrack.Open(s.netns, mode)
}

var (
	_ agent.Kernel = (*nft.Conn)(nil)
	_ agent.Flows  = (*conntrack.Conn)(nil)
)
