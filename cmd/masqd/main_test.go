package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--log-format=json"}, args...)
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		full = append([]string{args[0], "--log-format=json"}, args[1:]...)
	}
	code := run(context.Background(), full, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ip-masq-agent")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRender(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqLinkLocal: true\n")
	code, out, errs := runArgs(t, "render", "--config", p, "--masq-chain=IP-MASQ-AGENT", "--random-fully=false")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	cfg, err := config.Load(p, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := nft.Build(cfg, nft.Options{Table: "masqd", Chain: "IP-MASQ-AGENT"}).String()
	if out != want {
		t.Errorf("render:\n%s\nwant:\n%s", out, want)
	}
}

func TestIPMasqAgentFlags(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\n")
	code, out, errs := runArgs(t, "check", "--config="+p, "--masq-chain=IP-MASQ-AGENT", "--nomasq-all-reserved-ranges",
		"--enable-ipv6=true", "--random-fully=false", "--v=2", "--logtostderr")
	if code != 0 || !strings.HasPrefix(out, "ok: 2 nonMasqueradeCIDRs (1 IPv4, 1 IPv6)") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	if !strings.Contains(errs, "ignoring ip-masq-agent's glog flags") {
		t.Errorf("no warning about glog flags: %s", errs)
	}
}

func TestCheckInvalid(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.1/8, fd00::/8]\nresyncIntervl: 5s\n")
	code, _, errs := runArgs(t, "check", "--config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{p + ":1:", "10.0.0.0/8", "--enable-ipv6", "resyncInterval", "3 problem(s) in " + p} {
		if !strings.Contains(errs, want) {
			t.Errorf("check output lacks %q:\n%s", want, errs)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"render", "--to-ports=70000"}, {"render", "--to-ports=1024-2048"}, {"explain", "not-an-ip"}, {"frobnicate"}} {
		if code, _, _ := runArgs(t, args...); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
	if code, out, _ := runArgs(t, "--version"); code != 0 || !strings.HasPrefix(out, "masqd ") {
		t.Errorf("--version: %d %q", code, out)
	}
}

func TestExplain(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16]\n")
	_, out, _ := runArgs(t, "explain", "--config", p, "10.1.2.3", "203.0.113.9")
	for _, want := range []string{
		`10.1.2.3: not masqueraded (rule 2: "masqd: nonMasqueradeCIDRs are not masqueraded"); in nonMasqueradeCIDRs interval 10.0.0.0/8 (from 10.0.0.0/8, 10.1.0.0/16 in ` + p + `)`,
		`203.0.113.9: masqueraded (rule 4: "masqd: outbound traffic is masqueraded")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

// TestOnceAndCleanup runs against the kernel in a throw-away namespace.
func TestOnceAndCleanup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test skipped: needs root to create network namespaces")
	}
	ns := fmt.Sprintf("masqd-cmdtest-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	nsPath := "--netns=/run/netns/" + ns
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	if code, _, errs := runArgs(t, "--once", "--config", p, nsPath); code != 0 || !strings.Contains(errs, `"op":"create"`) {
		t.Fatalf("--once: exit %d: %s", code, errs)
	}
	if code, _, errs := runArgs(t, "--once", "--config", p, nsPath); code != 0 || !strings.Contains(errs, "nothing changed") {
		t.Fatalf("second --once: exit %d: %s", code, errs)
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "masqd").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "elements = { 10.0.0.0/8 }") {
		t.Fatalf("nft list: %v\n%s", err, out)
	}
	if _, out, _ := runArgs(t, "cleanup", nsPath); out != "deleted table inet masqd\n" {
		t.Errorf("cleanup: %q", out)
	}
	if _, out, _ := runArgs(t, "cleanup", nsPath); out != "table inet masqd not present\n" {
		t.Errorf("second cleanup: %q", out)
	}
}
