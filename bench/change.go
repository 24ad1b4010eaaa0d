package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// changeRow is measurement 3 for one N, config format and operation.
type changeRow struct {
	N      int
	Format format
	Op     string // "add" or "remove"
	// Latency is from the config file's rename into place to the
	// timestamp of the agent's "synced" line (ms).
	Latency stat
	// Took is the agent's own "took" of that sync (ms).
	Took stat
}

// setRewriteRow is measurement 3's comparison: nft -f flushing masqd's set
// and adding every element back, with one CIDR more or less each time.
type setRewriteRow struct {
	N    int
	Wall stat
}

// latencyRow is measurement 4: many config changes in a row.
type latencyRow struct {
	N                int
	Format           format
	Changes          int
	Min, P50, P99    float64 // write to "synced" (ms)
	Max              float64
	TookP50, TookP99 float64 // the agent's "took" (ms)
}

// session is a running agent whose config file the harness rewrites the
// way kubelet and editors do: the new content is written elsewhere on the
// same file system and renamed over the old file.
type session struct {
	a       *agent
	ns      *netns
	path    string
	staging string
	seq     int
	last    time.Time // the previous change's rename
	first   logLine   // the agent's first "synced" line
}

// changeGap paces config changes at most 50 a second. Changes are rare in
// real life, and zap's default sampling logs only the first 100 lines with
// the same message per second: a faster burst would lose "synced" lines.
const changeGap = 20 * time.Millisecond

// startSession runs the agent on a fresh namespace with n CIDRs in format
// f and the given resyncInterval, and waits for its first sync.
func (b *bench) startSession(ctx context.Context, name string, n int, f format, resync string) (*session, error) {
	ns, err := b.ns.Add(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{ns: ns, path: filepath.Join(b.dir, name, "config", "ip-masq-agent"), staging: filepath.Join(b.dir, name, "staging")}
	for _, d := range []string{filepath.Dir(s.path), s.staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			ns.Close()
			return nil, err
		}
	}
	if err := os.WriteFile(s.path, []byte(configText(f, cidrs(n), resync)), 0o644); err != nil {
		ns.Close()
		return nil, err
	}
	if s.a, err = startAgent(agentOptions{bin: b.bin, config: s.path, ns: ns}); err != nil {
		ns.Close()
		return nil, err
	}
	first, err := s.a.next(ctx, 60*time.Second, isSynced)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("first sync: %w", err)
	}
	s.first = first
	return s, nil
}

func (s *session) close() {
	s.a.stop()
	s.ns.Close()
}

// change publishes text as the config and returns the time from the rename
// to the agent's "synced" line, and that line's "took".
func (s *session) change(ctx context.Context, text string) (latency, took time.Duration, err error) {
	l, t0, err := s.publish(ctx, text, isSynced)
	if err != nil {
		return 0, 0, err
	}
	return l.At.Sub(t0), l.Took, nil
}

// publish renames text into place and waits for the agent's next line for
// which match is true; it returns the line and the time of the rename.
func (s *session) publish(ctx context.Context, text string, match func(logLine) bool) (logLine, time.Time, error) {
	s.seq++
	staged := filepath.Join(s.staging, strconv.Itoa(s.seq))
	if err := os.WriteFile(staged, []byte(text), 0o644); err != nil {
		return logLine{}, time.Time{}, err
	}
	if wait := time.Until(s.last.Add(changeGap)); wait > 0 {
		time.Sleep(wait)
	}
	s.a.drain()
	t0 := time.Now()
	s.last = t0
	if err := os.Rename(staged, s.path); err != nil {
		return logLine{}, time.Time{}, err
	}
	l, err := s.a.next(ctx, 30*time.Second, match)
	return l, t0, err
}

// changeTexts are the two configs a change benchmark alternates between:
// n CIDRs, and the same with extraCIDR added.
func changeTexts(n int, f format) (base, added string) {
	list := cidrs(n)
	return configText(f, list, "60s"), configText(f, append(list, extraCIDR), "60s")
}

// measureChange is measurement 3: one CIDR added, then removed, in a
// running agent, for each N and both config formats.
func (b *bench) measureChange(ctx context.Context) error {
	for _, n := range b.plan.sizes {
		for _, f := range []format{formatJSON, formatYAML} {
			base, added := changeTexts(n, f)
			s, err := b.startSession(ctx, fmt.Sprintf("change-%d-%s", n, f), n, f, "60s")
			if err != nil {
				return fmt.Errorf("agent, N=%d %s: %w", n, f, err)
			}
			lat := map[string][]float64{}
			took := map[string][]float64{}
			for range b.plan.reps {
				for _, step := range []struct{ op, text string }{{"add", added}, {"remove", base}} {
					l, t, err := s.change(ctx, step.text)
					if err != nil {
						s.close()
						return fmt.Errorf("%s one CIDR, N=%d %s: %w", step.op, n, f, err)
					}
					lat[step.op] = append(lat[step.op], ms(l))
					took[step.op] = append(took[step.op], ms(t))
				}
			}
			s.close()
			for _, op := range []string{"add", "remove"} {
				b.res.Change = append(b.res.Change, changeRow{N: n, Format: f, Op: op, Latency: summarize(lat[op]), Took: summarize(took[op])})
			}
			b.progress("change N=%d %s: add %.1f ms (took %.2f ms)", n, f, summarize(lat["add"]).Med, summarize(took["add"]).Med)
		}
		if err := b.setRewrite(ctx, n); err != nil {
			return fmt.Errorf("set rewrite, N=%d: %w", n, err)
		}
	}
	return nil
}

// setRewrite times nft -f flushing masqd's set and adding all N+1, then
// all N elements back, alternately, in a namespace holding masqd's table.
func (b *bench) setRewrite(ctx context.Context, n int) error {
	f, ok := b.files[n]
	if !ok {
		var err error
		if f, err = b.prepareApply(ctx, n); err != nil {
			return err
		}
		b.files[n] = f
	}
	list := cidrs(n)
	name := "n" + strconv.Itoa(n)
	with, err := writeFile(b.dir, name+"-set-add.nft", setRewriteText("masqd", append(list, extraCIDR)))
	if err != nil {
		return err
	}
	without, err := writeFile(b.dir, name+"-set-remove.nft", setRewriteText("masqd", list))
	if err != nil {
		return err
	}
	i := 0
	s, err := b.repeatInNS(ctx,
		func(ns *netns) error {
			_, err := runTimed(ctx, ns, "", "nft", "-f", f.Nft)
			return err
		},
		func(ns *netns) (usage, error) {
			i++
			file := with
			if i%2 == 0 {
				file = without
			}
			return runTimed(ctx, ns, "", "nft", "-f", file)
		})
	if err != nil {
		return err
	}
	b.res.SetRewrite = append(b.res.SetRewrite, setRewriteRow{N: n, Wall: s})
	return nil
}

// measureLatency is measurement 4: plan.changes config writes in a row,
// each waiting for the kernel, alternately adding and removing a CIDR.
func (b *bench) measureLatency(ctx context.Context) error {
	for _, c := range b.plan.latency {
		base, added := changeTexts(c.n, c.f)
		s, err := b.startSession(ctx, fmt.Sprintf("latency-%d-%s", c.n, c.f), c.n, c.f, "60s")
		if err != nil {
			return fmt.Errorf("agent, N=%d %s: %w", c.n, c.f, err)
		}
		var lat, took []float64
		for i := range b.plan.changes {
			text := added
			if i%2 == 1 {
				text = base
			}
			l, t, err := s.change(ctx, text)
			if err != nil {
				s.close()
				return fmt.Errorf("change %d, N=%d %s: %w", i+1, c.n, c.f, err)
			}
			lat = append(lat, ms(l))
			took = append(took, ms(t))
		}
		s.close()
		all := summarize(lat)
		b.res.Latency = append(b.res.Latency, latencyRow{
			N: c.n, Format: c.f, Changes: len(lat),
			P50: percentile(lat, 50), P99: percentile(lat, 99), Max: all.Max, Min: all.Min,
			TookP50: percentile(took, 50), TookP99: percentile(took, 99),
		})
		b.progress("latency N=%d %s: p50 %.1f ms, p99 %.1f ms over %d changes", c.n, c.f, percentile(lat, 50), percentile(lat, 99), len(lat))
	}
	return nil
}
