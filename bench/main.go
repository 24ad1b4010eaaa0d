package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// plan is how much a run measures.
type plan struct {
	Quick        bool
	sizes        []int
	packetSizes  []int
	idleSizes    []int
	reps         int
	ticks        int // no-change resync passes per N
	changes      int // config writes per latency series
	latency      []latencySeries
	idle         time.Duration
	packetTime   time.Duration // per repetition and topology
	packetMax    int64         // connections per repetition and topology
	workers      int
	verifyMax    int  // count kernel entries after the first apply up to this N
	huge         int  // one run each of the first apply and the restart at this N; 0: none
	packetLegacy bool // also run the packet test on iptables-legacy
	ctChanges    int  // conntrack: times the one prefix leaves and re-enters the list
}

type latencySeries struct {
	n int
	f format
}

func newPlan(quick bool) plan {
	p := plan{
		Quick:        quick,
		sizes:        []int{64, 1000, 10000, 100000},
		packetSizes:  []int{64, 1000, 10000, 100000},
		idleSizes:    []int{64, 100000},
		reps:         7,
		ticks:        15,
		changes:      200,
		latency:      []latencySeries{{64, formatJSON}, {64, formatYAML}, {10000, formatJSON}, {10000, formatYAML}},
		idle:         time.Minute,
		packetTime:   2 * time.Second,
		packetMax:    100000,
		workers:      runtime.NumCPU(),
		verifyMax:    100000,
		huge:         1000000,
		packetLegacy: true,
		ctChanges:    10,
	}
	if quick {
		p.packetSizes = []int{64, 1000, 10000}
		p.idleSizes = []int{100000}
		p.reps = 3
		p.ticks = 5
		p.changes = 100
		p.latency = []latencySeries{{64, formatJSON}, {10000, formatJSON}}
		p.idle = 10 * time.Second
		p.packetTime = 300 * time.Millisecond
		p.packetLegacy = false
		p.packetMax = 20000
		p.verifyMax = 10000
		p.huge = 0
		p.ctChanges = 4
	}
	return p
}

// bench is one run of the harness.
type bench struct {
	bin    string
	dir    string // scratch files
	ns     *namespaces
	plan   plan
	legacy bool // iptables-legacy works on this kernel
	files  map[int]applyFiles
	res    *results
	start  time.Time
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.1fs] "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
}

func main() {
	quick := flag.Bool("quick", false, "fewer repetitions and shorter windows; finishes in under two minutes")
	bin := flag.String("masqd", "bin/masqd", "the masqd binary to measure")
	out := flag.String("out", "docs/benchmarks.md", "the report to write")
	chart := flag.String("chart", "docs/bench-apply.svg", "the SVG chart of apply time to write")
	only := flag.String("only", "", "comma-separated measurements to run (apply,resync,change,latency,packet,idle,restart,huge,conntrack); all when empty")
	sizes := flag.String("sizes", "", "comma-separated CIDR counts instead of the plan's")
	flag.Parse()
	if err := run(*quick, *bin, *out, *chart, *only, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(quick bool, bin, out, chart, only, sizes string) error {
	absBin, err := preflight(bin)
	if err != nil {
		return err
	}
	p, err := planWithSizes(quick, sizes)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "masqd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	removeStale()
	b := &bench{bin: absBin, dir: dir, ns: newNamespaces(), plan: p, files: map[int]applyFiles{}, start: time.Now()}
	defer b.ns.CloseAll()
	b.res = &results{Plan: p, Machine: describeMachine(ctx, absBin), Started: b.start}
	if err := b.probeLegacy(ctx); err != nil {
		b.res.Skipped = append(b.res.Skipped, "iptables-legacy-restore: not usable on this kernel ("+tail(err.Error(), 200)+"); its columns are absent")
	} else {
		b.legacy = true
	}

	failed := b.measure(ctx, only)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	b.res.Took = time.Since(b.start)
	b.res.Machine.LoadEnd = loadAverage()
	if err := writeReport(b.res, out, chart); err != nil {
		return err
	}
	b.progress("wrote %s and %s", out, chart)
	if len(failed) > 0 {
		return fmt.Errorf("measurements failed: %s (see the report)", strings.Join(failed, ", "))
	}
	return nil
}

// preflight checks that the harness runs as root with the tools it calls,
// and returns the absolute path of the masqd binary bin.
func preflight(bin string) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("run as root: the harness creates network namespaces")
	}
	for _, tool := range []string{"ip", "nft", "iptables-nft-restore", "iptables-nft-save", "/usr/bin/time"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found (apt-get install -y iproute2 nftables iptables time): %w", tool, err)
		}
	}
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(absBin); err != nil {
		return "", fmt.Errorf("masqd binary (make build): %w", err)
	}
	return absBin, nil
}

// planWithSizes is the plan for quick, with the CIDR counts of -sizes
// (comma-separated; the plan's own when empty) for every sized measurement.
func planWithSizes(quick bool, sizes string) (plan, error) {
	p := newPlan(quick)
	if sizes == "" {
		return p, nil
	}
	var err error
	if p.sizes, err = parseSizes(sizes); err != nil {
		return p, err
	}
	p.packetSizes, p.idleSizes = p.sizes, p.sizes[len(p.sizes)-1:]
	p.latency = []latencySeries{{p.sizes[0], formatJSON}}
	return p, nil
}

// measure runs the measurements named in only (comma-separated; all when
// empty) in a fixed order until ctx is done. A failed measurement is
// recorded in the results and the rest still run; measure returns the
// names of those that failed.
func (b *bench) measure(ctx context.Context, only string) []string {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"apply", b.measureApply},
		{"resync", b.measureResync},
		{"change", b.measureChange},
		{"latency", b.measureLatency},
		{"packet", b.measurePacket},
		{"idle", b.measureIdle},
		{"restart", b.measureRestart},
		{"huge", b.measureHuge},
		{"conntrack", b.measureConntrack},
	}
	want := map[string]bool{}
	for s := range strings.SplitSeq(only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	var failed []string
	for _, s := range steps {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		b.progress("%s…", s.name)
		if err := s.fn(ctx); err != nil {
			msg := fmt.Sprintf("%s: %v", s.name, err)
			b.progress("FAILED %s", msg)
			b.res.Failed = append(b.res.Failed, msg)
			failed = append(failed, s.name)
		}
	}
	return failed
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<19 {
			return nil, fmt.Errorf("-sizes: %q is not a CIDR count from 1 to %d", f, 1<<19)
		}
		out = append(out, n)
	}
	return out, nil
}

// machine describes where the numbers were measured.
type machine struct {
	Cores                   int
	CPU, Kernel, Nft, Ipt   string
	Go, Masqd, Commit, Date string
	// Load is /proc/loadavg's 1-minute average when the run started and
	// when it ended: other work on the machine skews every figure.
	LoadStart, LoadEnd string
}

func describeMachine(ctx context.Context, bin string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	first := func(argv ...string) string {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	m.Kernel = first("uname", "-r")
	m.Nft = first("nft", "--version")
	m.Ipt = first("iptables-nft-restore", "--version")
	m.Masqd = first(bin, "--version")
	m.Commit = first("git", "describe", "--tags", "--always", "--dirty")
	m.LoadStart = loadAverage()
	return m
}

// loadAverage is the 1-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
