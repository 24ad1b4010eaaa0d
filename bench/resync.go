package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// resyncRow is measurement 2 at one N.
type resyncRow struct {
	N int
	// Took is the agent's own "took" on no-change resync passes (ms).
	Took stat
	// CPUPerTick is the agent's CPU time over the ticks divided by their
	// number (ms): everything a pass costs, not only the sync.
	CPUPerTick float64
	Ticks      int
	// Startup is the agent's first sync (creating the table), its "took".
	Startup float64
	// Trigger is what made the no-change passes.
	Trigger string
	// RSS and PeakRSS of the agent after the ticks (MiB).
	RSS, PeakRSS float64
	// Wall time of one rewrite by the other tools (ms).
	Rewrite map[string]stat
}

// resyncInterval is the agent's resync period in measurement 2.
const resyncInterval = 200 * time.Millisecond

// What made measurement 2's no-change passes.
const (
	triggerTick = "resync tick"
	triggerFile = "identical config renamed into place"
)

// measureResync is measurement 2: the agent's steady-state check against
// ip-masq-agent's restore of its whole chain and a whole-table nft rewrite,
// which are what a tool without a diff does every cycle.
func (b *bench) measureResync(ctx context.Context) error {
	for _, n := range b.plan.sizes {
		f, ok := b.files[n]
		if !ok {
			var err error
			if f, err = b.prepareApply(ctx, n); err != nil {
				return err
			}
			b.files[n] = f
		}
		row := resyncRow{N: n, Rewrite: map[string]stat{}}
		if err := b.agentResync(ctx, n, &row); err != nil {
			return fmt.Errorf("agent, N=%d: %w", n, err)
		}
		tableText := tableRewriteText("masqd", f.Ruleset)
		tablePath, err := writeFile(b.dir, "n"+strconv.Itoa(n)+"-rewrite.nft", tableText)
		if err != nil {
			return err
		}
		type rewrite struct {
			name string
			load []string // restore input file (or nft file) and command
			in   string   // stdin of the timed command
			argv []string
		}
		rewrites := []rewrite{
			{toolIptNft, []string{f.Ipt, "iptables-nft-restore", "--noflush"}, f.IptCycle, []string{"iptables-nft-restore", "--noflush"}},
			{toolNft + " (whole table)", []string{"", "nft", "-f", f.Nft}, "", []string{"nft", "-f", tablePath}},
		}
		if b.legacy {
			rewrites = append(rewrites, rewrite{toolIptLegacy, []string{f.Ipt, "iptables-legacy-restore", "--noflush"}, f.IptCycle, []string{"iptables-legacy-restore", "--noflush"}})
		}
		for _, r := range rewrites {
			s, err := b.repeatInNS(ctx,
				func(ns *netns) error {
					_, err := runTimed(ctx, ns, r.load[0], r.load[1:]...)
					return err
				},
				func(ns *netns) (usage, error) { return runTimed(ctx, ns, r.in, r.argv...) })
			if err != nil {
				return fmt.Errorf("%s rewrite, N=%d: %w", r.name, n, err)
			}
			row.Rewrite[r.name] = s
		}
		b.res.Resync = append(b.res.Resync, row)
		b.progress("resync N=%d: agent took %.3f ms (cpu %.2f ms/tick), iptables-nft rewrite %.1f ms",
			n, row.Took.Med, row.CPUPerTick, row.Rewrite[toolIptNft].Med)
	}
	return nil
}

// repeatInNS runs setup in one fresh namespace, then times step
// plan.reps times there.
func (b *bench) repeatInNS(ctx context.Context, setup func(*netns) error, step func(*netns) (usage, error)) (stat, error) {
	ns, err := b.ns.Add(ctx)
	if err != nil {
		return stat{}, err
	}
	defer ns.Close()
	if err := setup(ns); err != nil {
		return stat{}, fmt.Errorf("initial load: %w", err)
	}
	var xs []float64
	for range b.plan.reps {
		u, err := step(ns)
		if err != nil {
			return stat{}, err
		}
		xs = append(xs, ms(u.Wall))
	}
	return summarize(xs), nil
}

// agentResync runs the agent with a short resyncInterval and reads the cost
// of plan.ticks no-change passes from its log and from /proc. If no resync
// pass comes within a few intervals (an agent that applies the configured
// interval only after its first default 60 s tick), the passes are made by
// renaming an identical config into place instead, and the row says so:
// such a pass re-reads and parses the file before its sync.
func (b *bench) agentResync(ctx context.Context, n int, row *resyncRow) error {
	s, err := b.startSession(ctx, "resync-"+strconv.Itoa(n), n, formatJSON, resyncInterval.String())
	if err != nil {
		return err
	}
	defer s.close()
	row.Startup = ms(s.first.Took)
	row.Trigger = triggerTick
	text := configText(formatJSON, cidrs(n), resyncInterval.String())
	pass := func() (logLine, error) {
		if row.Trigger == triggerTick {
			return s.a.next(ctx, 10*resyncInterval+5*time.Second, isResyncPass)
		}
		l, _, err := s.publish(ctx, text, isFilePass)
		return l, err
	}
	// The first pass after start may still re-read the config; measure
	// from the second one on.
	if _, err := s.a.next(ctx, 5*resyncInterval, isResyncPass); err != nil {
		if errors.Is(err, errAgentExited) || ctx.Err() != nil {
			return fmt.Errorf("first resync: %w", err)
		}
		row.Trigger = triggerFile
		if _, err := pass(); err != nil {
			return fmt.Errorf("first no-change pass: %w", err)
		}
	}
	pid := s.a.cmd.Process.Pid
	c0, err := readProcCPU(pid)
	if err != nil {
		return err
	}
	var took []float64
	for range b.plan.ticks {
		l, err := pass()
		if err != nil {
			return fmt.Errorf("no-change pass: %w", err)
		}
		took = append(took, ms(l.Took))
	}
	c1, err := readProcCPU(pid)
	if err != nil {
		return err
	}
	rss, peak, err := readRSS(pid)
	if err != nil {
		return err
	}
	row.Took = summarize(took)
	row.Ticks = len(took)
	row.CPUPerTick = ms(c1.Sched-c0.Sched) / float64(len(took))
	row.RSS, row.PeakRSS = float64(rss)/1024, float64(peak)/1024
	return nil
}
