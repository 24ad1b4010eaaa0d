package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/test/e2e/testbed"
)

// soakDuration is how long TestSoak runs: SOAK (a Go duration), or a few
// seconds in `make test`. `make soak` runs it for ten minutes.
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SOAK")
	if s == "" {
		return 4 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("SOAK=%q: want a positive Go duration such as 10m", s)
	}
	return d
}

// Soak destinations. The shared ones keep their verdict in both configs and
// in the defaults; the flipping one changes with the config and is only
// counted.
var (
	soakExempt = []string{"10.96.0.10", "192.168.5.10"}
	soakMasq   = []string{"11.11.11.11", "203.0.113.10", "198.51.100.10"}
	soakFlip   = "172.20.0.10"
)

// soakConfigs are two valid configs that share 10.0.0.0/8 and
// 192.168.0.0/16 and differ in 172.16.0.0/12 and in thousands of filler
// prefixes, so that every switch is a real delta for the kernel.
func soakConfigs() [2]string {
	var out [2]string
	for i, n := range []int{2000, 3000} {
		var b strings.Builder
		b.WriteString("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 192.168.0.0/16\n")
		if i == 0 {
			b.WriteString("  - 172.16.0.0/12\n")
		}
		for j := range n {
			fmt.Fprintf(&b, "  - %d.%d.%d.0/24\n", 12+i, j>>7, j&127*2)
		}
		out[i] = b.String()
	}
	return out
}

// procStats are the agent's footprint.
type procStats struct {
	goroutines, fds int
	rssKiB          int
}

func readStats(p *agentProc) (procStats, error) {
	var st procStats
	g, err := metric(p, "go_goroutines")
	if err != nil {
		return st, err
	}
	st.goroutines = int(g)
	pid := p.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return st, err
	}
	st.fds = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.rssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return st, nil
}

// TestSoak runs the agent while pods open a steady stream of connections
// and the config flips between two valid configs many times a second, by
// rename as kubelet writes a ConfigMap. Every connection is checked by the
// source the receiver saw: a shared destination must never get the wrong
// NAT decision. The agent's goroutines, open files and RSS must not grow.
func TestSoak(t *testing.T) {
	b := newBed(t)
	dur := soakDuration(t)
	cfgs := soakConfigs()
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	write := func(body string) error {
		tmp := filepath.Join(dir, ".config.tmp")
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(cfgs[0]); err != nil {
		t.Fatal(err)
	}
	p, url := startAgent(t, b, path)
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))

	started := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), started.Add(dur))
	defer cancel()
	st := &soakTally{started: started, counts: map[string]int{}}
	dsts := append(append(slices.Clone(soakExempt), soakMasq...), soakFlip)
	var wg sync.WaitGroup
	// The connections: none starts after the deadline, and each has its
	// own timeout, so none is cut short by the end of the run.
	for w := range 4 {
		wg.Go(func() {
			for i := w; time.Now().Before(started.Add(dur)); i++ {
				dst := dsts[i%len(dsts)]
				got, err := b.SourceSeen(context.Background(), netip.MustParseAddr(dst))
				st.record(dst, got.Addr(), err)
			}
		})
	}
	// The writer: a new config every 25 ms, alternating.
	writeErr := make(chan error, 1)
	wg.Go(func() { writeErr <- st.flipConfigs(ctx, write, cfgs) })
	// The footprint after a warm-up, and progress every 10 s on long runs.
	warm := min(dur/5, 10*time.Second)
	select {
	case <-time.After(warm):
	case <-ctx.Done():
	}
	before, err := readStats(p)
	if err != nil {
		t.Fatal(err)
	}
	st.logProgress(ctx, t)
	wg.Wait()
	if err := <-writeErr; err != nil {
		t.Fatalf("config write: %v", err)
	}
	after, err := readStats(p)
	if err != nil {
		t.Fatal(err)
	}
	st.check(t, dur, dsts)
	t.Logf("footprint after %v warm-up → end: goroutines %d → %d, open files %d → %d, RSS %d → %d KiB",
		warm, before.goroutines, after.goroutines, before.fds, after.fds, before.rssKiB, after.rssKiB)
	if after.goroutines > before.goroutines+5 || after.fds > before.fds+5 || after.rssKiB > before.rssKiB+20<<10 {
		t.Errorf("the agent grew: goroutines %d → %d, open files %d → %d, RSS %d → %d KiB",
			before.goroutines, after.goroutines, before.fds, after.fds, before.rssKiB, after.rssKiB)
	}
	checkLastConfigWins(t, b, p, path, st.writes.Load())
}

// soakResult is one connection of TestSoak.
type soakResult struct {
	dst   string
	src   netip.Addr
	err   error
	stamp time.Duration // since the start
}

// soakTally is what TestSoak's connections saw and how often its config
// changed. Its methods may be called from any goroutine.
type soakTally struct {
	started time.Time
	writes  atomic.Int64

	mu     sync.Mutex
	counts map[string]int // connections by destination
	wrong  []soakResult   // wrong NAT decisions
	errs   []soakResult   // failed connections
}

// record counts a connection to dst whose source the receiver saw as src.
func (st *soakTally) record(dst string, src netip.Addr, err error) {
	r := soakResult{dst: dst, src: src, err: err, stamp: time.Since(st.started)}
	st.mu.Lock()
	defer st.mu.Unlock()
	if r.err != nil {
		st.errs = append(st.errs, r)
		return
	}
	st.counts[r.dst]++
	switch {
	case slices.Contains(soakExempt, r.dst) && r.src != testbed.PodIP4,
		slices.Contains(soakMasq, r.dst) && r.src != testbed.NodeIP4:
		st.wrong = append(st.wrong, r)
	}
}

// total is the number of connections that got an answer.
func (st *soakTally) total() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, c := range st.counts {
		n += c
	}
	return n
}

// flipConfigs writes cfgs in turn, starting with the second, every 25 ms
// until ctx ends, counting the writes. It returns the first write error.
func (st *soakTally) flipConfigs(ctx context.Context, write func(string) error, cfgs [2]string) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := write(cfgs[i%2]); err != nil {
			return err
		}
		st.writes.Add(1)
	}
}

// logProgress logs the tally every 10 s until ctx ends.
func (st *soakTally) logProgress(ctx context.Context, t *testing.T) {
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			st.mu.Lock()
			wrong, errs := len(st.wrong), len(st.errs)
			st.mu.Unlock()
			t.Logf("%v: %d connections, %d wrong, %d errors, %d config writes", time.Since(st.started).Round(time.Second), st.total(), wrong, errs, st.writes.Load())
		case <-ctx.Done():
		}
	}
}

// check logs the tally of a run of dur and fails the test on any wrong NAT
// decision or failed connection, a destination of dsts never reached, or
// too few config writes.
func (st *soakTally) check(t *testing.T, dur time.Duration, dsts []string) {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	total := 0
	for _, d := range slices.Sorted(maps.Keys(st.counts)) {
		total += st.counts[d]
		t.Logf("%-14s %6d connections", d, st.counts[d])
	}
	writes := st.writes.Load()
	t.Logf("%v: %d connections, %d wrong NAT decisions, %d connection errors, %d config writes", dur, total, len(st.wrong), len(st.errs), writes)
	for _, r := range st.wrong[:min(len(st.wrong), 10)] {
		t.Errorf("at %v: %s saw source %s: wrong NAT decision", r.stamp, r.dst, r.src)
	}
	for _, r := range st.errs[:min(len(st.errs), 10)] {
		t.Errorf("at %v: %s: %v", r.stamp, r.dst, r.err)
	}
	for _, d := range dsts {
		if st.counts[d] == 0 {
			t.Errorf("no connection to %s", d)
		}
	}
	if writes < int64(dur/(100*time.Millisecond)) {
		t.Errorf("only %d config writes in %v", writes, dur)
	}
}

// checkLastConfigWins checks that the kernel converges to the config last
// written at path, and that no sync failed in the writes the agent saw.
func checkLastConfigWins(t *testing.T, b *testbed.Bed, p *agentProc, path string, writes int64) {
	t.Helper()
	last, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := nft.Build(last, ipMasqAgentDefaults).String()
	eventually(t, 2*time.Second, "the kernel holds the last config", func() error {
		out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", nft.DefaultTable)
		if err != nil {
			return fmt.Errorf("nft list table: %v\n%s", err, out)
		}
		if got := netnstest.Canonical(string(out)); got != want {
			return fmt.Errorf("the table differs from the last config's: %s", firstDifference(got, want))
		}
		return nil
	})
	_, body, err := httpBody(p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var syncs, failed float64
	for line := range strings.Lines(body) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, "masqd_syncs_total{") {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		syncs += v
		if strings.Contains(name, `result="error"`) {
			failed += v
		}
	}
	t.Logf("%v syncs, %v failed", syncs, failed)
	if failed > 0 || syncs < float64(writes)/10 {
		t.Errorf("%v syncs for %d writes, %v failed", syncs, writes, failed)
	}
}
