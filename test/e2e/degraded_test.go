package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// startAgentAs is startAgent with the agent's command line prefixed by
// wrapper (such as setpriv and its options), which must exec masqd so that
// the process started is masqd itself.
func startAgentAs(t *testing.T, b *testbed.Bed, wrapper []string, cfgPath string, extra ...string) (*agentProc, string) {
	t.Helper()
	health, metrics := freeAddr(t), freeAddr(t)
	args := append([]string{masqdBin, "--config", cfgPath, "--netns=" + b.NodePath(), "--log-format=console",
		"--metrics-bind-address=" + metrics, "--health-bind-address=" + health}, extra...)
	args = append(append([]string{}, wrapper[1:]...), args...)
	cmd := exec.Command(wrapper[0], args...)
	logs, err := os.Create(filepath.Join(t.TempDir(), "masqd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, done: make(chan error, 1), metrics: "http://" + metrics, log: logs.Name()}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("masqd log:\n%s", out)
		}
	})
	return p, "http://" + health
}

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

// logLines returns the lines of the agent's log that contain every one of
// parts.
func logLines(t *testing.T, p *agentProc, parts ...string) []string {
	t.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
lines:
	for sc.Scan() {
		for _, part := range parts {
			if !strings.Contains(sc.Text(), part) {
				continue lines
			}
		}
		found = append(found, sc.Text())
	}
	return found
}

// logHas is for eventually: some line of the log contains every one of parts.
func logHas(t *testing.T, p *agentProc, parts ...string) func() error {
	return func() error {
		if len(logLines(t, p, parts...)) == 0 {
			return fmt.Errorf("no log line with %q", parts)
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
	eventually(t, time.Second, "defaults after the directory went", sourceIs(b, "172.20.0.10", testbed.PodIP4))
	checkTraffic(t, b, expect{"10.96.0.10": false, "172.20.0.10": false, "192.168.5.10": false, "11.11.11.11": true})
	eventually(t, time.Second, "still ready", statusIs(url+"/readyz", 200))
	eventually(t, time.Second, "config still valid", metricIs(p, "masqd_config_valid", 1))
	eventually(t, time.Second, "the defaults counted as a changed config", metricIs(p, `masqd_config_loads_total{result="changed"}`, changed+1))
	eventually(t, time.Second, "defaults logged", logHas(t, p, "config loaded", "from defaults (no config file)"))
	for _, l := range logLines(t, p, "from defaults") {
		t.Logf("log: %s", l)
	}

	// The directory comes back, as a kubelet or an operator would put it.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [172.16.0.0/12]\n")
	eventually(t, time.Second, "the new file applied", sourceIs(b, "10.96.0.10", testbed.NodeIP4))
	checkTraffic(t, b, expect{"10.96.0.10": true, "172.20.0.10": false, "192.168.5.10": true})
	eventually(t, time.Second, "ready", statusIs(url+"/readyz", 200))
	eventually(t, time.Second, "the new file counted", metricIs(p, `masqd_config_loads_total{result="changed"}`, changed+2))
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
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	wrapper := []string{"setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"}
	p, url := startAgentAs(t, b, wrapper, cfg)
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
	eventually(t, time.Second, "not ready while unreadable", statusIs(url+"/readyz", 503))
	eventually(t, time.Second, "config invalid", metricIs(p, "masqd_config_valid", 0))
	eventually(t, time.Second, "error logged", logHas(t, p, "ERROR", cfg, "permission denied"))
	for _, l := range logLines(t, p, "permission denied") {
		t.Logf("log: %s", l)
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
	eventually(t, time.Second, "drift repaired with the last good config", sourceIs(b, "172.20.0.10", testbed.NodeIP4))
	checkTraffic(t, b, want)

	if err := os.Chmod(cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "ready again", statusIs(url+"/readyz", 200))
	eventually(t, time.Second, "config valid again", metricIs(p, "masqd_config_valid", 1))
	eventually(t, time.Second, "recovery logged", logHas(t, p, "config valid again"))
	checkTraffic(t, b, want)
}
