package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/test/e2e/testbed"
)

var crashRounds = flag.Int("crash-rounds", 8, "rounds of TestCrashDuringSync: each kills `masqd --once` at a random moment of a large sync")

// crashCIDRs is the size of each of the crash test's two configs.
const crashCIDRs = 20_000

// crashConfig is one of the crash test's configs: its file, the intervals
// its nonMasqueradeCIDRs merge to, and the table masqd makes of it, as `nft
// list` prints it.
type crashConfig struct {
	name, path string
	intervals  []nft.Interval
	table      string
}

// newCrashConfig writes a config of crashCIDRs IPv4 prefixes: n random /32
// and /24 prefixes drawn from 20.0.0.0–89.255.255.255 (clear of every
// destination of the bed), followed by shared and extra. The draw is fixed
// by seed.
func newCrashConfig(t *testing.T, name string, seed uint64, shared, extra []string) crashConfig {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x6d617371))
	cidrs := make([]string, 0, crashCIDRs)
	for len(cidrs) < crashCIDRs-len(shared)-len(extra) {
		a := netip.AddrFrom4([4]byte{byte(20 + r.IntN(70)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		bits := 32
		if r.IntN(4) == 0 {
			bits = 24
		}
		cidrs = append(cidrs, netip.PrefixFrom(a, bits).Masked().String())
	}
	cidrs = append(append(cidrs, shared...), extra...)
	prefixes := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		prefixes[i] = netip.MustParsePrefix(c)
	}
	path := writeConfig(t, "nonMasqueradeCIDRs:\n- "+strings.Join(cidrs, "\n- ")+"\n")
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return crashConfig{name: name, path: path, intervals: nft.Merge(prefixes), table: nft.Build(cfg, ipMasqAgentDefaults).String()}
}

// crashState is what the kernel held after a kill: the name of the config
// whose whole table `nft list` prints (the set and every rule, read by nft
// itself rather than masqd's code), "no table", or a description of a mix.
func crashState(ctx context.Context, b *testbed.Bed, known ...crashConfig) (string, error) {
	out, err := b.Exec(ctx, b.NodeNS, "nft", "list", "tables")
	if err != nil {
		return "", fmt.Errorf("nft list tables: %v\n%s", err, out)
	}
	if !slices.Contains(strings.Fields(string(out)), nft.DefaultTable) {
		return "no table", nil
	}
	out, err = b.Exec(ctx, b.NodeNS, "nft", "list", "table", "inet", nft.DefaultTable)
	if err != nil {
		return "", fmt.Errorf("nft list table: %v\n%s", err, out)
	}
	got := netnstest.Canonical(string(out))
	var differ []string
	for _, k := range known {
		if got == k.table {
			return k.name, nil
		}
		differ = append(differ, k.name+": "+firstDifference(got, k.table))
	}
	return "", fmt.Errorf("mixed or incomplete table, equal to none of the configs: %s", strings.Join(differ, "; "))
}

// firstDifference names the first line where the listing got differs from
// the table want, eliding long element lists.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, elide(gl), elide(wl))
		}
	}
	return "equal"
}

func elide(s string) string {
	const n = 120
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d more bytes, %d elements in all)", len(s)-n, strings.Count(s, ",")+1)
}

// onceTimeout bounds one `masqd --once` of the crash test.
const onceTimeout = time.Minute

// onceTimed runs `masqd --once` on cfg to completion and returns how long it took.
func onceTimed(t *testing.T, b *testbed.Bed, cfg string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), onceTimeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, masqdBin, "--once", "--config", cfg, "--netns="+b.NodePath(), "--log-format=console").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("masqd --once --config %s: %v\n%s", cfg, err, out)
	}
	return took
}

// onceKilled starts `masqd --once` on cfg and sends it SIGKILL after delay.
// It reports whether the kill ended masqd, rather than masqd exiting first.
func onceKilled(t *testing.T, b *testbed.Bed, cfg string, delay time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), onceTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, masqdBin, "--once", "--config", cfg, "--netns="+b.NodePath(), "--log-format=console")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("masqd --once --config %s exited before the kill: %v", cfg, err)
		}
		return false
	case <-timer.C:
	}
	_ = cmd.Process.Kill()
	err := <-done
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true
	}
	// It exited on its own between the timer and the kill.
	if err != nil {
		t.Fatalf("masqd --once --config %s: %v", cfg, err)
	}
	return false
}

// crashSeed is the seed of TestCrashDuringSync's kill delays: MASQD_CRASH_SEED
// when set, to replay a failure, the clock otherwise. It is logged either
// way.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MASQD_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MASQD_CRASH_SEED=%q: want an unsigned decimal integer, as a previous run logged it", s)
		}
	}
	t.Logf("kill delays drawn with seed %d (replay with MASQD_CRASH_SEED=%d)", seed, seed)
	return seed
}

// TestCrashDuringSync kills `masqd --once` with SIGKILL at random moments
// while it swaps one large set for another, and checks that the kernel then
// holds exactly the old set or exactly the new one, with the whole chain,
// never a mix: masqd commits each sync in one netlink batch. After every
// kill, a run to completion converges on the new config.
func TestCrashDuringSync(t *testing.T) {
	b := newBed(t)
	if *crashRounds < 1 {
		t.Fatalf("-crash-rounds %d: want at least 1", *crashRounds)
	}
	// A and B differ in nearly every entry; each exempts one bed destination
	// the other masquerades, so traffic tells them apart.
	shared := []string{"192.168.0.0/16", "100.64.0.0/10", "198.51.100.0/24"}
	cfgA := newCrashConfig(t, "A", 1, shared, []string{"10.0.0.0/8"})
	cfgB := newCrashConfig(t, "B", 2, shared, []string{"172.16.0.0/12"})

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &crashRun{t: t, b: b, ctx: ctx, cfgA: cfgA, cfgB: cfgB}
	create := c.killDuringCreate()

	// A full swap, timed.
	full := onceTimed(t, b, cfgB.path)
	c.expectState(cfgB)
	t.Logf("%d CIDRs per config: A merges to %d intervals, B to %d; masqd --once took %v to create A, %v to swap to B",
		crashCIDRs, len(cfgA.intervals), len(cfgB.intervals), create, full)

	from := c.killDuringSwaps(full)
	c.checkMixSeen(from)

	// The last config is B, and traffic follows it.
	onceTimed(t, b, cfgB.path)
	c.expectState(cfgB)
	checkTraffic(t, b, expect{"172.20.0.10": false, "10.96.0.10": true, "192.168.5.10": false, "11.11.11.11": true})
}

// crashRun is what the steps of TestCrashDuringSync share.
type crashRun struct {
	t          *testing.T
	b          *testbed.Bed
	ctx        context.Context
	cfgA, cfgB crashConfig
	r          *rand.Rand // from crashSeed, set by killDuringCreate
}

// expectState fails the test unless the kernel holds want.
func (c *crashRun) expectState(want crashConfig) {
	c.t.Helper()
	got, err := crashState(c.ctx, c.b, c.cfgA, c.cfgB)
	if err != nil {
		c.t.Fatal(err)
	}
	if got != want.name {
		c.t.Fatalf("the kernel holds %s, want %s", got, want.name)
	}
}

// killDuringCreate kills masqd --once while it creates the table with A,
// expects no table or all of A, and returns how long a create of A took.
func (c *crashRun) killDuringCreate() time.Duration {
	t, b, ctx, cfgA := c.t, c.b, c.ctx, c.cfgA
	// A kill while masqd creates the table leaves no table or all of it.
	// The kill comes within 1.2 times the time a create took.
	create := onceTimed(t, b, cfgA.path)
	c.expectState(cfgA)
	if out, err := b.Exec(ctx, b.NodeNS, "nft", "delete", "table", "inet", nft.DefaultTable); err != nil {
		t.Fatalf("nft delete table: %v\n%s", err, out)
	}
	seed := crashSeed(t)
	c.r = rand.New(rand.NewPCG(seed, 0))
	delay := time.Duration(c.r.Int64N(int64(create) * 6 / 5))
	killed := onceKilled(t, b, cfgA.path, delay)
	got, err := crashState(ctx, b, cfgA)
	if err != nil || (got != "no table" && got != cfgA.name) {
		t.Errorf("killed after %v while creating A (killed: %v): the kernel holds %q, %v", delay, killed, got, err)
	}
	t.Logf("kill during the create, after %v (killed: %v): kernel held %s", delay.Round(time.Millisecond), killed, got)
	onceTimed(t, b, cfgA.path)
	c.expectState(cfgA)
	return create
}

// killDuringSwaps kills masqd --once during swaps between A and B, at
// random points of a swap that took about full, and expects one whole
// config in the kernel after each kill. It returns the config the kernel
// holds at the end.
func (c *crashRun) killDuringSwaps(full time.Duration) crashConfig {
	t, b, ctx, cfgA, cfgB := c.t, c.b, c.ctx, c.cfgA, c.cfgB
	// Each round kills the swap from the config the kernel holds to the
	// other one, then converges on the other one; the next round goes back.
	budget := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		budget = min(budget, time.Until(d)/2)
	}
	start := time.Now()
	var before, after, finished, mixes, rounds int
	from, to := cfgB, cfgA
	for i := 0; i < *crashRounds && time.Since(start) < budget; i++ {
		rounds++
		roundStart := time.Now()
		// Delays are drawn from [0, 1.2×full]; every other round from its
		// top third only, where the commit lies (a sync reads the table
		// back first and commits at the end). full is the last swap's
		// time, so the window follows the machine's load.
		lo, hi := time.Duration(0), full*6/5
		if i%2 == 1 {
			lo = hi * 2 / 3
		}
		delay := lo + time.Duration(c.r.Int64N(int64(hi-lo)))
		killed := onceKilled(t, b, to.path, delay)
		readStart := time.Now()
		got, err := crashState(ctx, b, from, to)
		read := time.Since(readStart)
		switch {
		case err != nil:
			mixes++
			t.Errorf("round %d, %s → %s, killed after %v: %v", i, from.name, to.name, delay, err)
		case !killed:
			finished++
			if got != to.name {
				t.Errorf("round %d: masqd --once finished, but the kernel holds %s, want %s", i, got, to.name)
			}
		case got == from.name:
			before++
		case got == to.name:
			after++
		default:
			t.Errorf("round %d: the kernel holds %s after the kill, want %s or %s", i, got, from.name, to.name)
		}
		full = onceTimed(t, b, to.path)
		c.expectState(to)
		t.Logf("round %d: %s → %s, kill after %v: kernel held %s (read back in %v); the swap then took %v; round took %v",
			i, from.name, to.name, delay.Round(time.Millisecond), got, read.Round(time.Millisecond), full.Round(time.Millisecond), time.Since(roundStart).Round(time.Millisecond))
		from, to = to, from
	}
	if rounds < *crashRounds {
		t.Logf("stopped after %d of %d rounds: the time budget of %v is spent", rounds, *crashRounds, budget)
	}
	t.Logf("%d rounds in %v: killed before the commit %d, after it %d, finished before the kill %d; mixed tables %d",
		rounds, time.Since(start).Round(time.Millisecond), before, after, finished, mixes)
	return from
}

// checkMixSeen checks that crashState itself notices a mix: B plus one
// interval of A only. from is the config the kernel holds.
func (c *crashRun) checkMixSeen(from crashConfig) {
	t, b, ctx, cfgA, cfgB := c.t, c.b, c.ctx, c.cfgA, c.cfgB
	// The check itself sees a mix: B plus one interval of A only.
	if from.name != cfgB.name {
		onceTimed(t, b, cfgB.path)
	}
	c.expectState(cfgB)
	var extra nft.Interval
	for _, iv := range cfgA.intervals {
		// The kernel refuses an element that overlaps one it holds.
		if !slices.ContainsFunc(cfgB.intervals, func(o nft.Interval) bool { return o.Contains(iv.First) || iv.Contains(o.First) }) {
			extra = iv
			break
		}
	}
	if out, err := b.Exec(ctx, b.NodeNS, "nft", "add", "element", "inet", nft.DefaultTable, nft.SetV4, "{ "+extra.String()+" }"); err != nil {
		t.Fatalf("nft add element %s: %v\n%s", extra, err, out)
	}
	if got, err := crashState(ctx, b, cfgA, cfgB); err == nil {
		t.Errorf("B plus %s from A passed for %s", extra, got)
	} else {
		t.Logf("B plus %s from A is seen: %v", extra, err)
	}
}
