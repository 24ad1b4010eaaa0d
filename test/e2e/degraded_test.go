package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// metric returns the value of one series of the agent's metrics, named as
// /metrics prints it (`masqd_config_loads_total{result="error"}`).
func metric(p *agentProc, series string) (float64, error) {
	_, body, err := httpBody(p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(body) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, fmt.Errorf("no series %s in /metrics", series)
}

// metricIs is for eventually: the series has the value want.
func metricIs(p *agentProc, series string, want float64) func() error {
	return func() error {
		got, err := metric(p, series)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s = %v, want %v", series, got, want)
		}
		return nil
	}
}

// TestConfigDirRemoved: the directory holding the config file goes away.
// As in ip-masq-agent, a missing config means the defaults: masqd applies
// them and stays ready. When the directory comes back with a file, inotify
// (now on the parent) sees it and masqd applies it at once.
func TestConfigDirRemoved(t *testing.T) {
	b := newBed(t)
	dir := filepath.Join(t.TempDir(), "ip-masq-agent")
	cfg := filepath.Join(dir, "config")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("nonMasqueradeCIDRs: [10.0.0.0/8]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, url := startAgent(t, b, cfg)
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))
	checkTraffic(t, b, expect{"10.96.0.10": false, "172.20.0.10": true, "192.168.5.10": true})
	changed, err := metric(p, `masqd_config_loads_total{result="changed"}`)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// The defaults: every RFC 1918 range and more is exempt.
	eventually(t, settle, "defaults after the directory went", sourceIs(b, "172.20.0.10", testbed.PodIP4))
	checkTraffic(t, b, expect{"10.96.0.10": false, "172.20.0.10": false, "192.168.5.10": false, "11.11.11.11": true})
	eventually(t, settle, "still ready", statusIs(url+"/readyz", 200))
	eventually(t, settle, "config still valid", metricIs(p, "masqd_config_valid", 1))
	eventually(t, settle, "file events still watched", metricIs(p, "masqd_config_watch_degraded", 0))
	eventually(t, settle, "the defaults counted as a changed config", metricIs(p, `masqd_config_loads_total{result="changed"}`, changed+1))
	eventually(t, settle, "defaults logged", logHas(t, p, 1, "config loaded", "path", cfg, "summary", contains("from defaults (no config file)")))
	for _, l := range findLog(agentLog(t, p), "config loaded", "summary", contains("from defaults")) {
		t.Logf("log: %v", l)
	}

	// The directory comes back, as a kubelet or an operator would put it.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [172.16.0.0/12]\n")
	eventually(t, settle, "the new file applied", sourceIs(b, "10.96.0.10", testbed.NodeIP4))
	checkTraffic(t, b, expect{"10.96.0.10": true, "172.20.0.10": false, "192.168.5.10": true})
	eventually(t, settle, "ready", statusIs(url+"/readyz", 200))
	eventually(t, settle, "the new file counted", metricIs(p, `masqd_config_loads_total{result="changed"}`, changed+2))
	if n, err := metric(p, `masqd_config_loads_total{result="error"}`); err == nil && n != 0 {
		t.Errorf("%v config loads failed while the directory was away and back", n)
	}
}

// capBits are the capability numbers the degraded tests look at.
const (
	capDACOverride   = 1
	capDACReadSearch = 2
	capNetAdmin      = 12
	capSysAdmin      = 21
)

// effectiveCaps returns the effective capability set of process pid.
func effectiveCaps(pid int) (uint64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff in /proc/%d/status", pid)
}

// TestConfigUnreadable: the config file cannot be read (chmod 000). Root
// reads it anyway, so masqd runs without CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH. It must keep the last good rules, log an error
// naming the file, report masqd_config_valid 0 and /readyz 503, and
// recover once the file is readable again.
func TestConfigUnreadable(t *testing.T) {
	b := newBed(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("end-to-end test skipped: setpriv not installed (apt-get install -y util-linux)")
	}
	dir := filepath.Join(t.TempDir(), "config")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	cfg := filepath.Join(dir, "ip-masq-agent")
	const unreadable = "config unreadable; keeping the last good config and the kernel rules"
	if err := os.WriteFile(cfg, []byte("nonMasqueradeCIDRs: [10.0.0.0/8]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, url := startAgentAs(t, b, noDACOverride, cfg)
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))
	caps, err := effectiveCaps(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if caps&(1<<capDACOverride|1<<capDACReadSearch) != 0 || caps&(1<<capNetAdmin|1<<capSysAdmin) != 1<<capNetAdmin|1<<capSysAdmin {
		t.Fatalf("masqd's effective capabilities are %#x: want CAP_NET_ADMIN and CAP_SYS_ADMIN without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH", caps)
	}
	want := expect{"10.96.0.10": false, "172.20.0.10": true, "11.11.11.11": true}
	checkTraffic(t, b, want)

	if err := os.Chmod(cfg, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(cfg, 0o644) })
	eventually(t, settle, "not ready while unreadable", statusIs(url+"/readyz", 503))
	eventually(t, settle, "config invalid", metricIs(p, "masqd_config_valid", 0))
	eventually(t, settle, "error logged", logHas(t, p, 1, unreadable, "level", "error", "path", cfg, "error", contains("permission denied")))
	for _, l := range findLog(agentLog(t, p), unreadable) {
		t.Logf("log: %v", l)
	}
	if _, body, err := httpBody(url + "/readyz"); err == nil {
		t.Logf("/readyz: %s", strings.TrimSpace(body))
	}
	if n, err := metric(p, `masqd_config_loads_total{result="error"}`); err != nil || n < 1 {
		t.Errorf("masqd_config_loads_total{result=\"error\"} = %v (%v), want at least 1", n, err)
	}
	// The last good rules stay, and the agent still syncs them.
	checkTraffic(t, b, want)
	if _, err := b.Exec(t.Context(), b.NodeNS, "nft", "delete", "table", "inet", "masqd"); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "drift repaired with the last good config", sourceIs(b, "172.20.0.10", testbed.NodeIP4))
	checkTraffic(t, b, want)

	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "ready again", statusIs(url+"/readyz", 200))
	eventually(t, settle, "config valid again", metricIs(p, "masqd_config_valid", 1))
	eventually(t, settle, "recovery logged", logHas(t, p, 1, "config valid again", "level", "info", "path", cfg))
	checkTraffic(t, b, want)

	// The same for a directory on the way that cannot be searched.
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "not ready while the directory is closed", statusIs(url+"/readyz", 503))
	eventually(t, settle, "config invalid", metricIs(p, "masqd_config_valid", 0))
	// A second error line: the recovery above reset what was last said.
	eventually(t, settle, "error logged again", logHas(t, p, 2, unreadable, "level", "error", "path", cfg, "error", contains("permission denied")))
	for _, l := range findLog(agentLog(t, p), unreadable) {
		t.Logf("log: %v", l)
	}
	checkTraffic(t, b, want)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "ready again", statusIs(url+"/readyz", 200))
	eventually(t, settle, "config valid again", metricIs(p, "masqd_config_valid", 1))
}

// noDACOverride runs a command as root without the capabilities that let
// root read any file.
var noDACOverride = []string{"setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"}

// TestConfigUnreadableAtStart: a config file that cannot be read when the
// agent starts is not taken for a missing one: nothing is applied, the agent
// is not ready, and it starts converging once the file can be read.
func TestConfigUnreadableAtStart(t *testing.T) {
	b := newBed(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("end-to-end test skipped: setpriv not installed (apt-get install -y util-linux)")
	}
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	if err := os.Chmod(cfg, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(cfg, 0o644) })
	p, url := startAgentAs(t, b, noDACOverride, cfg)
	const msg = "config unreadable; nothing applied until it is fixed"
	eventually(t, settle, "error logged", logHas(t, p, 1, msg, "level", "error", "path", cfg, "error", contains("permission denied")))
	for _, l := range findLog(agentLog(t, p), msg) {
		t.Logf("log: %v", l)
	}
	eventually(t, settle, "not ready", statusIs(url+"/readyz", 503))
	eventually(t, settle, "config invalid", metricIs(p, "masqd_config_valid", 0))
	if out, err := b.Exec(t.Context(), b.NodeNS, "nft", "list", "tables"); err != nil || strings.Contains(string(out), "masqd") {
		t.Errorf("a table while no config could be read (%v):\n%s", err, out)
	}
	checkTraffic(t, b, expect{"11.11.11.11": false})

	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "ready", statusIs(url+"/readyz", 200))
	checkTraffic(t, b, expect{"10.96.0.10": false, "172.20.0.10": true, "11.11.11.11": true})
}

// exhaustInotify uses up the inotify instances of uid, which no other
// process uses, so that inotify_init fails with EMFILE for a process
// running as uid and for no one else: the limit
// (fs.inotify.max_user_instances) counts per user, by effective uid. The
// instances are created on a thread of this process that takes uid as its
// effective uid for the while (setresuid acts on the calling thread only),
// and closed when the test ends. Go starts new threads from a template
// thread while the calling one is locked, so none inherits that uid. It
// returns how many instances it holds.
func exhaustInotify(t *testing.T, uid int) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		t.Skipf("end-to-end test skipped: %v", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || limit > 4096 {
		t.Skipf("end-to-end test skipped: fs.inotify.max_user_instances is %q, too many to use up", strings.TrimSpace(string(raw)))
	}
	type result struct {
		fds []int
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		keep := ^uintptr(0) // -1: leave that id as it is
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("setresuid(-1, %d, -1): %w", uid, e)}
			return
		}
		for range limit + 1 {
			fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
			if err != nil {
				if !errors.Is(err, unix.EMFILE) {
					r.err = fmt.Errorf("inotify_init1 as uid %d: %w", uid, err)
				}
				break
			}
			r.fds = append(r.fds, fd)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, 0, keep); e != 0 {
			// The thread stays locked and dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("setresuid(-1, 0, -1): %w", e))
			res <- r
			return
		}
		runtime.UnlockOSThread()
		res <- r
	}()
	r := <-res
	t.Cleanup(func() {
		for _, fd := range r.fds {
			unix.Close(fd)
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.fds) > limit {
		t.Fatalf("uid %d got %d inotify instances, over the limit of %d", uid, len(r.fds), limit)
	}
	return len(r.fds)
}

// TestInotifyUnavailable: masqd cannot create an inotify instance. It must
// say so, and still pick up config changes on the resync interval.
func TestInotifyUnavailable(t *testing.T) {
	b := newBed(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("end-to-end test skipped: setpriv not installed (apt-get install -y util-linux)")
	}
	// A uid of its own per test process, far above any real account.
	uid := 3_000_000_000 + os.Getpid()%1_000_000
	held := exhaustInotify(t, uid)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nresyncInterval: 500ms\n")
	caps := "+net_admin,+sys_admin,+dac_override,+dac_read_search"
	wrapper := []string{"setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
		"--inh-caps=" + caps, "--ambient-caps=" + caps, "--"}
	p, url := startAgentAs(t, b, wrapper, cfg)
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))
	const msg = "cannot create an inotify instance; relying on the resync interval"
	eventually(t, settle, "inotify failure logged", logHas(t, p, 1, msg, "level", "warn", "config", cfg))
	eventually(t, settle, "degraded watch in the metrics", metricIs(p, "masqd_config_watch_degraded", 1))
	for _, l := range findLog(agentLog(t, p), msg) {
		t.Logf("log (uid %d, %d inotify instances held by the test): %v", uid, held, l)
	}
	checkTraffic(t, b, expect{"10.96.0.10": false, "172.20.0.10": true})

	// Without file events every resync re-reads the file.
	unchanged, err := metric(p, `masqd_config_loads_total{result="unchanged"}`)
	if err != nil {
		unchanged = 0 // no such load yet
	}
	eventually(t, 2*time.Second, "re-reads on the resync interval", func() error {
		n, err := metric(p, `masqd_config_loads_total{result="unchanged"}`)
		if err != nil {
			return err
		}
		if n < unchanged+2 {
			return fmt.Errorf("%v unchanged loads, want at least %v", n, unchanged+2)
		}
		return nil
	})

	start := time.Now()
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [172.16.0.0/12]\nresyncInterval: 500ms\n")
	eventually(t, 2*time.Second, "the change applied on a resync", sourceIs(b, "10.96.0.10", testbed.NodeIP4))
	t.Logf("the change was applied %v after the write (resyncInterval 500ms)", time.Since(start).Round(time.Millisecond))
	checkTraffic(t, b, expect{"10.96.0.10": true, "172.20.0.10": false})
	eventually(t, settle, "still ready", statusIs(url+"/readyz", 200))
}
