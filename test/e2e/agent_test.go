package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// agentProc is a running `masqd` agent in the node namespace.
type agentProc struct {
	cmd  *exec.Cmd
	done chan error
	// metrics is the base URL of its metrics server.
	metrics string
	// log is the path of its combined output: its JSON log lines.
	log string
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, so that test runs side by side do not collide.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startAgent runs the agent for b's node namespace and returns it with the
// base URL of its health server.
func startAgent(t *testing.T, b *testbed.Bed, cfgPath string, extra ...string) (*agentProc, string) {
	t.Helper()
	return startAgentAs(t, b, nil, cfgPath, extra...)
}

// startAgentAs is startAgent with the agent's command line prefixed by
// wrapper (such as setpriv and its options), which must exec masqd so that
// the process started is masqd itself.
func startAgentAs(t *testing.T, b *testbed.Bed, wrapper []string, cfgPath string, extra ...string) (*agentProc, string) {
	t.Helper()
	health, metrics := freeAddr(t), freeAddr(t)
	args := append([]string{masqdBin, "--config", cfgPath, "--netns=" + b.NodePath(), "--log-format=json",
		"--metrics-bind-address=" + metrics, "--health-bind-address=" + health}, extra...)
	args = append(slices.Clone(wrapper), args...)
	cmd := exec.Command(args[0], args[1:]...)
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

// settle bounds the wait for what follows an event at once (a reload, a
// recovery, a repair): it takes milliseconds, and the deadline allows for a
// loaded two-core machine. How long it took is logged; a test that must be
// fast is a benchmark.
const settle = 10 * time.Second

// eventually retries check until it passes or the deadline, and returns
// how long it took.
func eventually(t *testing.T, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sourceIs(b *testbed.Bed, dst string, want netip.Addr) func() error {
	return func() error {
		got, err := b.SourceSeen(context.Background(), netip.MustParseAddr(dst))
		if err != nil {
			return err
		}
		if got.Addr() != want {
			return fmt.Errorf("%s saw %s, want %s", dst, got.Addr(), want)
		}
		return nil
	}
}

func httpBody(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func statusIs(url string, want int) func() error {
	return func() error {
		code, body, err := httpBody(url)
		if err != nil {
			return err
		}
		if code != want {
			return fmt.Errorf("%s = %d %q, want %d", url, code, strings.TrimSpace(body), want)
		}
		return nil
	}
}

func replaceFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestAgent(t *testing.T) {
	b := newBed(t)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\n")
	p, url := startAgent(t, b, cfg)
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))
	checkTraffic(t, b, expect{"172.20.0.10": false, "11.11.11.11": true})

	// A rename-style write changes the verdict.
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	t.Logf("reload after rename: %v", eventually(t, settle, "reload after rename", sourceIs(b, "172.20.0.10", testbed.NodeIP4)))

	// An invalid config keeps the previous behaviour. (It is written by
	// rename: an in-place write is briefly an empty file, which means the
	// defaults, as in ip-masq-agent.)
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [10.0.0.1/8]\n")
	eventually(t, settle, "not ready on a bad config", statusIs(url+"/readyz", 503))
	checkTraffic(t, b, expect{"172.20.0.10": true, "10.96.0.10": false})
	_, metrics, err := httpBody(p.metrics + "/metrics")
	if err != nil || !strings.Contains(metrics, "masqd_config_valid 0") {
		t.Errorf("metrics lack masqd_config_valid 0 (%v)", err)
	}

	// Fixing it recovers without a restart.
	replaceFile(t, cfg, "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\n")
	t.Logf("recovery: %v", eventually(t, settle, "recovery", sourceIs(b, "172.20.0.10", testbed.PodIP4)))
	eventually(t, settle, "ready again", statusIs(url+"/readyz", 200))

	// Someone deletes the table: the monitor notices and masqd restores it,
	// long before the 60 s resync would.
	eventually(t, settle, "the nftables monitor running", metricIs(p, "masqd_nftables_monitor_up", 1))
	if out, err := b.Exec(context.Background(), b.NodeNS, "nft", "delete", "table", "inet", "masqd"); err != nil {
		t.Fatalf("nft delete table: %v %s", err, out)
	}
	t.Logf("drift repair: %v", eventually(t, settle, "drift repair", sourceIs(b, "11.11.11.11", testbed.NodeIP4)))
	eventually(t, settle, "drift metric", func() error {
		_, m, err := httpBody(p.metrics + "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(m, `masqd_drift_repairs_total{kind="table"} 1`) {
			return fmt.Errorf("no table drift repair counted")
		}
		return nil
	})

	// SIGTERM: a clean exit well within the DaemonSet's grace period, and
	// the rules stay.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(settle):
		t.Fatalf("masqd did not exit within %v of SIGTERM", settle)
	}
	checkTraffic(t, b, expect{"11.11.11.11": true, "10.96.0.10": false})
}

// TestKillAndRestart: after kill -9 the rules stay; a restart converges
// without deleting the table first, so no connection goes unmasqueraded.
func TestKillAndRestart(t *testing.T) {
	b := newBed(t)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	p, url := startAgent(t, b, cfg)
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))
	_ = p.cmd.Process.Kill()
	<-p.done
	p.done <- nil

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wrong := make(chan string, 1)
	probes := make(chan int, 1)
	go func() {
		n := 0
		defer func() { probes <- n }()
		for ctx.Err() == nil && n < 2000 {
			got, err := b.SourceSeen(ctx, netip.MustParseAddr("11.11.11.11"))
			if err == nil && got.Addr() != testbed.NodeIP4 {
				select {
				case wrong <- got.String():
				default:
				}
			}
			n++
		}
	}()
	_, url2 := startAgent(t, b, cfg)
	eventually(t, 5*time.Second, "ready after restart", statusIs(url2+"/readyz", 200))
	cancel()
	n := <-probes
	select {
	case w := <-wrong:
		t.Fatalf("a connection during the restart was not masqueraded: source %s", w)
	default:
	}
	if n == 0 {
		t.Fatal("no connection was made during the restart")
	}
	t.Logf("%d connections during kill -9 and restart, all masqueraded", n)
}

// TestConfigMapSwap updates the config the way kubelet updates a mounted
// ConfigMap: a new timestamped directory, the ..data symlink swapped to it
// by rename, the old directory removed.
func TestConfigMapSwap(t *testing.T) {
	b := newBed(t)
	dir := t.TempDir()
	version := func(name, body string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "config"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_11_25_01", "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	for old, new := range map[string]string{"..2026_11_25_01": "..data", "..data/config": "config"} {
		if err := os.Symlink(old, filepath.Join(dir, new)); err != nil {
			t.Fatal(err)
		}
	}
	_, url := startAgent(t, b, filepath.Join(dir, "config"))
	eventually(t, 5*time.Second, "ready", statusIs(url+"/readyz", 200))
	checkTraffic(t, b, expect{"172.20.0.10": true})

	version("..2026_11_25_02", "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\n")
	if err := os.Symlink("..2026_11_25_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_25_01")); err != nil {
		t.Fatal(err)
	}
	t.Logf("reload after the ConfigMap swap: %v", eventually(t, settle, "reload after the ConfigMap swap", sourceIs(b, "172.20.0.10", testbed.PodIP4)))
}
