package container

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/test/e2e/testbed"
)

func TestMain(m *testing.M) {
	// Best effort: a leftover that cannot be removed does not stop this
	// run, whose ids differ.
	if err := removeStale(); err != nil {
		fmt.Fprintln(os.Stderr, "container: stale containers:", err)
	}
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// newBed builds a bed that is removed when the test ends, failed or not.
// Cleanups run last-in first-out, so containers started later are deleted
// before their namespace goes.
func newBed(t *testing.T) *testbed.Bed {
	t.Helper()
	b, err := testbed.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("remove bed: %v", err)
		}
	})
	return b
}

// configVolume is a ConfigMap volume's directory as kubelet's atomic writer
// keeps it: the data in a timestamped directory, ..data a symlink to it,
// and each item a symlink through ..data.
type configVolume struct {
	dir, item string
	n         int
}

// write publishes a new version of the item the way kubelet does: a new
// timestamped directory, ..data swapped to it by rename, the old one removed.
func (v *configVolume) write(t *testing.T, body string) {
	t.Helper()
	v.n++
	ts := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, v.item), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(v.dir, v.item)
	if _, err := os.Lstat(link); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", v.item), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// sourceIs connects from the pod to dst until the receiver sees want.
func sourceIs(t *testing.T, b *testbed.Bed, dst string, want netip.Addr, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := b.SourceSeen(context.Background(), netip.MustParseAddr(dst))
		if err == nil && got.Addr() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection to %s: want source %s within %v, last saw %s (%v)", dst, want, within, got.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSources connects once to each destination and checks the source.
func checkSources(t *testing.T, b *testbed.Bed, want map[string]netip.Addr) {
	t.Helper()
	for _, dst := range slices.Sorted(maps.Keys(want)) {
		got, err := b.SourceSeen(context.Background(), netip.MustParseAddr(dst))
		if err != nil {
			t.Errorf("%s: %v", dst, err)
		} else if got.Addr() != want[dst] {
			t.Errorf("%s saw source %s, want %s", dst, got.Addr(), want[dst])
		}
	}
}

// capNumbers maps the capabilities a manifest may name to their bits.
var capNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_FSETID": unix.CAP_FSETID,
	"CAP_FOWNER": unix.CAP_FOWNER, "CAP_MKNOD": unix.CAP_MKNOD, "CAP_NET_RAW": unix.CAP_NET_RAW,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_KILL": unix.CAP_KILL, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
}

// checkProcess reads the container's process from /proc and checks that
// the runtime applied the pod spec: capabilities, user, no_new_privs, a
// read-only root, the config mount, the environment and the memory limit.
func checkProcess(t *testing.T, c *container, pod podSpec) {
	t.Helper()
	pid, err := c.pid()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var wantCaps uint64
	for _, name := range pod.caps {
		n, ok := capNumbers[name]
		if !ok {
			t.Fatalf("capability %s: add its number to capNumbers", name)
		}
		wantCaps |= 1 << n
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		got, err := strconv.ParseUint(fields[k], 16, 64)
		if err != nil || got != wantCaps {
			t.Errorf("%s = %s, want %016x (%v)", k, fields[k], wantCaps, pod.caps)
		}
	}
	if uid := strings.Fields(fields["Uid"]); pod.uid != nil && (len(uid) == 0 || uid[0] != strconv.Itoa(int(*pod.uid))) {
		t.Errorf("Uid %q, want %d", fields["Uid"], *pod.uid)
	}
	if want := map[bool]string{true: "1", false: "0"}[pod.noNewPrivileges]; fields["NoNewPrivs"] != want {
		t.Errorf("NoNewPrivs %s, want %s", fields["NoNewPrivs"], want)
	}

	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{}
	for line := range strings.Lines(string(mounts)) {
		f := strings.Fields(line)
		if len(f) > 5 {
			opts[f[4]] = f[5]
		}
	}
	for _, m := range []struct {
		path string
		ro   bool
	}{{"/", pod.readOnlyRoot}, {pod.configMountPath, true}} {
		o, ok := opts[m.path]
		if !ok {
			t.Errorf("no mount at %s in the container", m.path)
		} else if isRO := slices.Contains(strings.Split(o, ","), "ro"); isRO != m.ro {
			t.Errorf("mount %s options %s, want read-only %v", m.path, o, m.ro)
		}
	}

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	for _, e := range pod.env {
		if !slices.Contains(env, e) {
			t.Errorf("the process lacks %s (it has %q)", e, env)
		}
	}
	t.Logf("container process %d: CapEff %s NoNewPrivs %s Uid %s, / %s, %s %s, env %q",
		pid, fields["CapEff"], fields["NoNewPrivs"], strings.Fields(fields["Uid"])[0], opts["/"], pod.configMountPath, opts[pod.configMountPath], env)
	if pod.memoryLimit > 0 {
		p := filepath.Join("/sys/fs/cgroup/memory", c.id, "memory.limit_in_bytes")
		if data, err := os.ReadFile(p); err != nil {
			t.Logf("memory limit not checked: %v", err)
		} else if got := strings.TrimSpace(string(data)); got != strconv.FormatInt(pod.memoryLimit, 10) {
			t.Errorf("%s = %s, want the manifest's %d", p, got, pod.memoryLimit)
		}
	}
}

// checkLogs decodes masqd's JSON log and fails on errors, and on any sign
// that masqd tried to write to its read-only root.
func checkLogs(t *testing.T, c *container) {
	t.Helper()
	f, err := os.Open(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "read-only file system") {
			t.Errorf("container %s: masqd wrote to its root filesystem: %s", c.id, line)
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("container %s: not a JSON log line (--log-format from the manifest): %s", c.id, line)
			continue
		}
		lines++
		if entry.Level == "error" || entry.Level == "fatal" || entry.Level == "panic" {
			t.Errorf("container %s logged %s %q: %s", c.id, entry.Level, entry.Msg, line)
		}
	}
	if lines == 0 {
		t.Errorf("container %s logged nothing", c.id)
	}
}

// TestContainer runs the DaemonSet's container in runc on a node of the
// bed: it programs the node with the manifest's capabilities on a
// read-only root, follows a ConfigMap update as kubelet writes it, answers
// the probes where the manifest asks, and ends within the grace period on
// SIGTERM, leaving the rules.
func TestContainer(t *testing.T) {
	skipUnlessRunnable(t)
	pod := readPodSpec(t, manifestPath)
	bnd := unpack(t)
	bed := newBed(t)
	p := newProber(bed)
	vol := &configVolume{dir: t.TempDir(), item: pod.configItem}

	// No ConfigMap: the optional volume is an empty directory; the defaults.
	c := bnd.start(t, pod, bed, vol.dir, runOpts{})
	ready := waitProbe(t, p, c, pod.readiness, 15*time.Second)
	waitProbe(t, p, c, pod.liveness, time.Second)
	t.Logf("container %s ready %v after start (GET :%d%s), live (GET :%d%s)", c.id, ready.Round(time.Millisecond), pod.readiness.port, pod.readiness.path, pod.liveness.port, pod.liveness.path)
	checkProcess(t, c, pod)
	node, podIP := testbed.NodeIP4, testbed.PodIP4
	checkSources(t, bed, map[string]netip.Addr{
		"11.11.11.11": node, "203.0.113.10": node,
		"10.96.0.10": podIP, "172.20.0.10": podIP, "192.168.5.10": podIP, "169.254.20.10": podIP,
	})

	// The ConfigMap is created, then changed: kubelet's ..data swaps.
	start := time.Now()
	vol.write(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	sourceIs(t, bed, "172.20.0.10", node, 2*time.Second)
	t.Logf("ConfigMap created: applied within %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	vol.write(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\nmasqLinkLocal: true\n")
	sourceIs(t, bed, "169.254.20.10", node, 2*time.Second)
	t.Logf("ConfigMap updated: applied within %v", time.Since(start).Round(time.Millisecond))
	after := map[string]netip.Addr{
		"11.11.11.11": node, "169.254.20.10": node, "192.168.5.10": node,
		"10.96.0.10": podIP, "172.20.0.10": podIP,
	}
	checkSources(t, bed, after)
	waitProbe(t, p, c, pod.readiness, time.Second)

	// Stop as kubelet does: SIGTERM through the runtime, then the grace period.
	grace := time.Duration(pod.gracePeriodSeconds) * time.Second
	took, err := c.stop(grace)
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("SIGTERM: exited in %v (terminationGracePeriodSeconds %v)", took.Round(time.Millisecond), grace)
	checkSources(t, bed, after)
	if out, err := bed.Exec(context.Background(), bed.NodeNS, "nft", "list", "table", "inet", "masqd"); err != nil {
		t.Errorf("the table is gone after the stop: %v %s", err, out)
	}
	checkLogs(t, c)
}

// rollingConfig is the rolling update's ConfigMap: the RFC 1918 ranges but
// 172.16.0.0/12, and 2,000 /32s (20.0.0.0/16, clear of the bed's
// destinations), so each restart converges over a real table.
func rollingConfig() string {
	var b strings.Builder
	b.WriteString("nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 192.168.0.0/16\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  - 20.0.%d.%d/32\n", i/128, i%128*2)
	}
	return b.String()
}

// TestRollingUpdate replaces the container again and again, as a
// DaemonSet's rolling update with maxSurge 0 does (old stopped, then new
// started from the same image), while the pod keeps opening connections:
// not one may fail or get the wrong NAT decision.
func TestRollingUpdate(t *testing.T) {
	skipUnlessRunnable(t)
	pod := readPodSpec(t, manifestPath)
	bnd := unpack(t)
	bed := newBed(t)
	p := newProber(bed)
	vol := &configVolume{dir: t.TempDir(), item: pod.configItem}
	vol.write(t, rollingConfig())
	grace := time.Duration(pod.gracePeriodSeconds) * time.Second

	c := bnd.start(t, pod, bed, vol.dir, runOpts{})
	waitProbe(t, p, c, pod.readiness, 15*time.Second)

	masq := []string{"11.11.11.11", "203.0.113.10", "172.20.0.10"}
	exempt := []string{"10.96.0.10", "192.168.5.10"}
	started := time.Now()
	tally, stop := startTraffic(bed, masq, exempt, started)
	defer stop()

	restarts := *restartCount
	var stops, readies []time.Duration
	for range restarts {
		took, err := c.stop(grace)
		if err != nil {
			t.Fatalf("stop %s: %v", c.id, err)
		}
		checkLogs(t, c)
		stops = append(stops, took)
		c = bnd.start(t, pod, bed, vol.dir, runOpts{})
		readies = append(readies, waitProbe(t, p, c, pod.readiness, 15*time.Second))
		// A short while of the new container serving before the next stop.
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	counts, wrong, failed := tally.counts, tally.wrong, tally.failed
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("%d restarts in %v: %d connections, %d wrong NAT decisions, %d failed; stop took %v–%v, ready after start %v–%v",
		restarts, time.Since(started).Round(time.Millisecond), total, len(wrong), len(failed),
		slices.Min(stops).Round(time.Millisecond), slices.Max(stops).Round(time.Millisecond),
		slices.Min(readies).Round(time.Millisecond), slices.Max(readies).Round(time.Millisecond))
	for _, w := range wrong[:min(len(wrong), 10)] {
		t.Errorf("wrong NAT decision %s", w)
	}
	for _, f := range failed[:min(len(failed), 10)] {
		t.Errorf("failed connection %s", f)
	}
	for _, d := range slices.Concat(masq, exempt) {
		if counts[d] == 0 {
			t.Errorf("no connection to %s succeeded", d)
		}
	}
}

// natTally is what the traffic of startTraffic saw.
type natTally struct {
	mu     sync.Mutex
	counts map[string]int // successful connections by destination
	wrong  []string       // connections translated to the wrong source
	failed []string       // connections that failed
}

// startTraffic connects from the pod to the destinations in turn, from two
// workers, and tallies whether each was masqueraded (masq) or not (exempt).
// The returned function stops the workers and waits for them; it may be
// called more than once.
func startTraffic(bed *testbed.Bed, masq, exempt []string, started time.Time) (*natTally, func()) {
	tally := &natTally{counts: map[string]int{}}
	dsts := slices.Concat(masq, exempt)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				dst := dsts[i%len(dsts)]
				got, err := bed.SourceSeen(context.Background(), netip.MustParseAddr(dst))
				want := testbed.PodIP4
				if slices.Contains(masq, dst) {
					want = testbed.NodeIP4
				}
				at := time.Since(started).Round(time.Millisecond)
				tally.mu.Lock()
				switch {
				case err != nil:
					tally.failed = append(tally.failed, fmt.Sprintf("at %v: %s: %v", at, dst, err))
				case got.Addr() != want:
					tally.wrong = append(tally.wrong, fmt.Sprintf("at %v: %s saw %s, want %s", at, dst, got.Addr(), want))
				default:
					tally.counts[dst]++
				}
				tally.mu.Unlock()
			}
		})
	}
	var once sync.Once
	return tally, func() {
		once.Do(func() { close(stop) })
		wg.Wait()
	}
}

// TestWithoutNetAdmin runs the manifest's container with NET_ADMIN taken
// away: masqd must fail and say why. It shows that the runtime grants only
// what the pod spec lists, so TestContainer's success rests on NET_ADMIN.
func TestWithoutNetAdmin(t *testing.T) {
	skipUnlessRunnable(t)
	pod := readPodSpec(t, manifestPath)
	pod.caps = slices.DeleteFunc(slices.Clone(pod.caps), func(c string) bool { return c == "CAP_NET_ADMIN" })
	bnd := unpack(t)
	bed := newBed(t)
	c := bnd.start(t, pod, bed, t.TempDir(), runOpts{})
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("container %s without NET_ADMIN still runs after 15 s; masqd should have exited", c.id)
	}
	if c.err == nil {
		t.Errorf("container %s without NET_ADMIN exited 0", c.id)
	}
	out, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("container %s without NET_ADMIN: the output does not name CAP_NET_ADMIN:\n%s", c.id, out)
	}
	if out, err := bed.Exec(context.Background(), bed.NodeNS, "nft", "list", "tables"); err != nil || strings.Contains(string(out), "masqd") {
		t.Errorf("without NET_ADMIN the node has tables %q (%v), want none of masqd's", out, err)
	}
}
