package main

import (
	"context"
	"fmt"
	"time"
)

// idleRow is measurement 6's idle half: the agent doing nothing but its
// default 60 s resync.
type idleRow struct {
	N      int
	Window time.Duration
	// CPU over the window, from /proc/PID/stat (10 ms ticks) and from the
	// threads' schedstat (ns).
	CPUStat, CPUSched time.Duration
	RSS, PeakRSS      float64 // MiB
}

// Percent is the share of one core the agent used over the window.
func (r idleRow) Percent() float64 {
	return 100 * r.CPUSched.Seconds() / r.Window.Seconds()
}

// measureIdle runs the agent on N CIDRs (resyncInterval 60s, ip-masq-agent's
// default) and reads its CPU time before and after plan.idle of quiet.
func (b *bench) measureIdle(ctx context.Context) error {
	for _, n := range b.plan.idleSizes {
		s, err := b.startSession(ctx, fmt.Sprintf("idle-%d", n), n, formatJSON, "60s")
		if err != nil {
			return fmt.Errorf("agent, N=%d: %w", n, err)
		}
		row, err := idleWindow(ctx, s, n, b.plan.idle)
		s.close()
		if err != nil {
			return fmt.Errorf("at N=%d: %w", n, err)
		}
		b.res.Idle = append(b.res.Idle, row)
		b.progress("idle N=%d: %.3f%% of a core, RSS %.1f MiB", n, row.Percent(), row.RSS)
	}
	return nil
}

func idleWindow(ctx context.Context, s *session, n int, window time.Duration) (idleRow, error) {
	pid := s.a.cmd.Process.Pid
	c0, err := readProcCPU(pid)
	if err != nil {
		return idleRow{}, err
	}
	start := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return idleRow{}, ctx.Err()
	}
	c1, err := readProcCPU(pid)
	if err != nil {
		return idleRow{}, err
	}
	rss, peak, err := readRSS(pid)
	if err != nil {
		return idleRow{}, err
	}
	return idleRow{
		N: n, Window: time.Since(start),
		CPUStat: c1.Stat - c0.Stat, CPUSched: c1.Sched - c0.Sched,
		RSS: float64(rss) / 1024, PeakRSS: float64(peak) / 1024,
	}, nil
}
