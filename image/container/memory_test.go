package container

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

var memoryCIDRs = flag.String("memory-cidrs", "10000", "comma-separated config sizes at which TestMemory measures the agent's peak memory (hack/memory.sh: 10000,100000,300000)")

// memoryConfig is a ConfigMap of n /32s on even addresses from 20.0.0.0
// (no two merge, so the set holds n intervals) after the RFC 1918 ranges,
// in YAML, the costlier format to parse.
func memoryConfig(n int) string {
	var b strings.Builder
	b.WriteString("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 172.16.0.0/12\n  - 192.168.0.0/16\n")
	for i := range n {
		a := 20<<24 + 2*i
		fmt.Fprintf(&b, "  - %d.%d.%d.%d/32\n", a>>24, a>>16&255, a>>8&255, a&255)
	}
	return b.String()
}

// peak is what one container took, read after it became ready.
type peak struct {
	ready      time.Duration
	hwmKiB     int64 // VmHWM: the process's peak resident set
	cgroupPeak int64 // the memory cgroup's max_usage_in_bytes: RSS, page cache and kernel memory charged to it
}

func (p peak) String() string {
	return fmt.Sprintf("ready after %v, peak RSS %.1f MiB, cgroup peak %.1f MiB", p.ready.Round(time.Millisecond), float64(p.hwmKiB)/1024, float64(p.cgroupPeak)/(1<<20))
}

// measure starts a container, waits until it is ready while kubelet's
// liveness probe would not have killed it, reads its peaks, and stops it.
func measure(t *testing.T, bnd *bundle, pod podSpec, bed *testbed.Bed, pr *prober, dir string, n int, o runOpts) peak {
	t.Helper()
	c := bnd.start(t, pod, bed, dir, o)
	// Kubelet's liveness probe, at the manifest's period, while masqd syncs.
	var misses, worst atomic.Int64
	stopLive := make(chan struct{})
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		tick := time.NewTicker(pod.liveness.period)
		defer tick.Stop()
		for {
			select {
			case <-stopLive:
				return
			case <-tick.C:
			}
			if code, _, err := pr.get(pod.liveness); err != nil || code != http.StatusOK {
				worst.Store(max(worst.Load(), misses.Add(1)))
			} else {
				misses.Store(0)
			}
		}
	}()
	ready := waitProbe(t, pr, c, pod.readiness, 30*time.Second+time.Duration(n)*time.Millisecond)
	close(stopLive)
	<-liveDone
	if w := worst.Load(); w >= int64(pod.liveness.failureThreshold) {
		t.Errorf("N=%d: the liveness probe failed %d times in a row during the first sync: kubelet would have restarted masqd", n, w)
	}
	time.Sleep(time.Second) // a resync pass or two after ready
	pk := peak{ready: ready}
	pid, err := c.pid()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			pk.hwmKiB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	if data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", c.id, "memory.max_usage_in_bytes")); err == nil {
		pk.cgroupPeak, _ = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	}
	if _, err := c.stop(time.Duration(pod.gracePeriodSeconds) * time.Second); err != nil {
		t.Errorf("N=%d: stop: %v", n, err)
	}
	checkLogs(t, c)
	return pk
}

// TestMemory measures the agent's peak memory where it is highest: a
// restart over a table that already holds the config (every rolling
// update). For each size of -memory-cidrs it creates the table with one
// container, then restarts twice: without a memory limit or GOMEMLIMIT,
// which shows what the agent takes, and as the manifest runs it, which must
// become ready without being killed. The DaemonSet's memory limit and the
// README's sizing come from these figures (hack/memory.sh).
func TestMemory(t *testing.T) {
	skipUnlessRunnable(t)
	pod := readPodSpec(t, manifestPath)
	bnd := unpack(t)
	for _, s := range strings.Split(*memoryCIDRs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			t.Fatalf("-memory-cidrs: %q is not a count", s)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			bed := newBed(t)
			pr := newProber(bed)
			vol := &configVolume{dir: t.TempDir(), item: pod.configItem}
			vol.write(t, memoryConfig(n))
			t.Logf("N=%d first start, no limit: %v", n, measure(t, bnd, pod, bed, pr, vol.dir, n, runOpts{noMemoryLimit: true}))
			t.Logf("N=%d restart over the table, no limit: %v", n, measure(t, bnd, pod, bed, pr, vol.dir, n, runOpts{noMemoryLimit: true}))
			t.Logf("N=%d restart over the table, limit %d MiB and GOMEMLIMIT: %v", n, pod.memoryLimit>>20, measure(t, bnd, pod, bed, pr, vol.dir, n, runOpts{}))
		})
	}
}
