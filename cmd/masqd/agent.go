package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/agent"
	"github.com/masqd/masqd/internal/cli"
	"github.com/masqd/masqd/internal/conntrack"
	"github.com/masqd/masqd/internal/nft"
)

// newAgent opens the kernel and returns an agent on it, configured by the
// flags, that tells flows (if not nil) about ruleset changes and runs tl
// (if not nil); the caller closes the Conn.
func newAgent(s *settings, log *zap.Logger, m *agent.Metrics, flows agent.Flows, tl *conntrack.TranslationLog) (*nft.Conn, *agent.Agent, error) {
	opts, err := s.rulesetOptions()
	if err != nil {
		return nil, nil, err
	}
	c, err := nft.Open(s.netns)
	if err != nil {
		return nil, nil, err
	}
	agent.WarnForeignSNAT(log, opts, func() (map[netip.Addr]bool, error) { return nft.NodeAddrs(s.netns) })
	return c, agent.New(c, agent.Options{ConfigPath: s.configPath, Config: s.configOptions(), Ruleset: opts,
		Log: log, Metrics: m, RemoveLegacy: s.removeLegacy, CleanupOnExit: s.cleanupOnExit, Flows: flows, TranslationLog: tl}), nil
}

// runAgent runs the agent and serves its metrics and health until
// SIGTERM/SIGINT.
func runAgent(ctx context.Context, s *settings, stdout io.Writer, log *zap.Logger) error {
	mode, err := conntrack.ParseMode(s.conntrackReconcile)
	if err != nil {
		return err
	}
	var flows agent.Flows // nil with --conntrack-reconcile=off
	if mode != conntrack.Off {
		ct, err := conntrack.Open(s.netns, mode)
		if err != nil {
			return err
		}
		defer ct.Close()
		flows = ct
	}
	var tl *conntrack.TranslationLog
	if s.translationLog != "" {
		if tl, err = conntrack.OpenTranslationLog(s.translationLog, stdout, s.netns, s.translationLogBuffer); err != nil {
			return fmt.Errorf("--translation-log: %w", err)
		}
	}
	m := agent.NewMetrics()
	c, a, err := newAgent(s, log, m, flows, tl)
	if err != nil {
		return err
	}
	defer c.Close()
	mh, err := m.Handler()
	if err != nil {
		return err
	}
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", mh)
	for _, srv := range []struct {
		name, addr string
		h          http.Handler
	}{{"metrics", s.metricsAddr, metrics}, {"health", s.healthAddr, a.HealthHandler()}} {
		stop, err := serve(srv.name, srv.addr, srv.h, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("masqd started", zap.String("version", cli.Version("masqd", version)), zap.String("config", s.configPath),
		zap.String("table", s.table), zap.Bool("ipv6", s.enableIPv6), zap.Bool("remove_legacy_rules", s.removeLegacy),
		zap.String("conntrack_reconcile", s.conntrackReconcile))
	return a.Run(ctx)
}

// serve serves h on addr until the returned function is called; an addr of
// "" or "0" serves nothing.
func serve(name, addr string, h http.Handler, log *zap.Logger) (stop func(), err error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", name, addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", zap.String("server", name), zap.Error(err))
		}
	}()
	return func() { hs.Close() }, nil
}

var (
	_ agent.Kernel = (*nft.Conn)(nil)
	_ agent.Flows  = (*conntrack.Conn)(nil)
)
