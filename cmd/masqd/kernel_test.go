package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/masqd/masqd/internal/netnstest"
)

// netns creates a throw-away network namespace for one test and returns
// its name; it goes when the test ends.
func netns(t *testing.T) string {
	t.Helper()
	return netnstest.New(t, "masqd-cmdtest")
}

// nftIn runs nft inside the namespace.
func nftIn(ns, stdin string, args ...string) (string, error) {
	return netnstest.Nft(ns, stdin, args...)
}

// canonical makes nft listings comparable with render's text.
func canonical(s string) string { return netnstest.Canonical(s) }

// TestOnceAndCleanup converges with --once in a throw-away namespace, checks
// the kernel's table against render, and deletes it with cleanup.
func TestOnceAndCleanup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		flags  []string
	}{
		{"defaults", "", nil},
		{"ip-masq-agent flags", "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 198.51.100.0/24, fd00::/8]\nmasqLinkLocal: true\n",
			[]string{"--masq-chain=IP-MASQ-AGENT", "--enable-ipv6", "--random-fully=false", "--v=2"}},
		{"own table", "nonMasqueradeCIDRs: []\n", []string{"--table=egress"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := netns(t)
			p := missingConfig(t)
			if tc.config != "" {
				p = writeConfig(t, tc.config)
			}
			table := "masqd"
			flags := append([]string{"--config", p}, tc.flags...)
			for _, f := range tc.flags {
				if v, ok := strings.CutPrefix(f, "--table="); ok {
					table = v
				}
			}
			kflags := append([]string{"--netns=/run/netns/" + ns}, flags...)

			rendered := renderChecked(t, ns, flags)

			code, out, errs := runArgs(t, append([]string{"--once"}, kflags...)...)
			synced := logged(t, errs, "synced")
			if code != 0 || out != "" || len(synced) != 1 || synced[0]["op"] != "create" || synced[0]["reason"] != "once" {
				t.Fatalf("--once: exit %d, stdout %q, want one create for reason once; log:\n%s", code, out, errs)
			}
			// render's script declares and flushes the table, then lists
			// it as nft does.
			_, listing, ok := strings.Cut(rendered, "flush table inet "+table+"\n")
			if !ok {
				t.Fatalf("render's script does not flush the table first:\n%s", rendered)
			}
			sameAsRender := func(step string) {
				t.Helper()
				listed, err := nftIn(ns, "", "list", "table", "inet", table)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(listing, canonical(listed)); diff != "" {
					t.Errorf("%s: kernel table differs from render (-render +kernel):\n%s", step, diff)
				}
			}
			sameAsRender("after --once")

			code, _, errs = runArgs(t, append([]string{"--once"}, kflags...)...)
			if code != 0 || len(logged(t, errs, "in sync; nothing changed")) != 1 || len(logged(t, errs, "synced")) != 0 {
				t.Errorf("second --once: exit %d, want no change; log:\n%s", code, errs)
			}

			// Loaded over masqd's table, and again: the same table.
			for _, step := range []string{"render loaded over masqd's table", "render loaded again"} {
				if _, err := nftIn(ns, rendered, "-f", "-"); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				sameAsRender(step)
			}
			checkCleanup(t, ns, table)
		})
	}
}

// renderChecked runs masqd render with flags and returns its script, which
// nft -c accepts in the namespace ns.
func renderChecked(t *testing.T, ns string, flags []string) string {
	t.Helper()
	code, rendered, errs := runArgs(t, append([]string{"render"}, flags...)...)
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, errs)
	}
	if _, err := nftIn(ns, rendered, "-c", "-f", "-"); err != nil {
		t.Fatalf("nft rejects render's text: %v\n%s", err, rendered)
	}
	return rendered
}

// checkCleanup runs masqd cleanup twice in ns: the first deletes the
// table, the second finds nothing to delete.
func checkCleanup(t *testing.T, ns, table string) {
	t.Helper()
	cleanup := []string{"cleanup", "--netns=/run/netns/" + ns, "--table", table}
	if code, out, errs := runArgs(t, cleanup...); code != 0 || out != "deleted table inet "+table+"\n" {
		t.Errorf("cleanup: exit %d, %q, %s", code, out, errs)
	}
	if _, err := nftIn(ns, "", "list", "table", "inet", table); err == nil {
		t.Errorf("table inet %s still listed after cleanup", table)
	}
	if code, out, errs := runArgs(t, cleanup...); code != 0 || out != "table inet "+table+" not present\n" {
		t.Errorf("second cleanup: exit %d, %q, %s", code, out, errs)
	}
}

// TestOnceInvalidConfig: nothing reaches the kernel, and the problems are
// printed one per line.
func TestOnceInvalidConfig(t *testing.T) {
	ns := netns(t)
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.1/8]\n")
	code, _, errs := runArgs(t, "--once", "--config", p, "--netns=/run/netns/"+ns)
	want := p + ":1:22: nonMasqueradeCIDRs[0]: 10.0.0.1/8 has host bits set (fix: did you mean 10.0.0.0/8?)\n1 problem(s) in " + p + "\n"
	if code != 1 || errs != want {
		t.Errorf("exit %d:\n%s\nwant 1:\n%s", code, errs, want)
	}
	if out, _ := nftIn(ns, "", "list", "ruleset"); out != "" {
		t.Errorf("the namespace has rules:\n%s", out)
	}
}

func TestOnceMissingNamespace(t *testing.T) {
	code, _, errs := runArgs(t, "--once", "--config", missingConfig(t), "--netns=/run/netns/masqd-cmdtest-does-not-exist")
	if code != 1 || !strings.Contains(errs, "open network namespace: ") || !strings.Contains(errs, "no such file or directory") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

// logged decodes a JSON log and returns the entries whose message is msg.
func logged(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for line := range strings.Lines(log) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		if e["msg"] == msg {
			found = append(found, e)
		}
	}
	return found
}

// logWatch is stderr for an agent under test: it keeps the JSON log and
// closes seen when an entry's message is msg.
type logWatch struct {
	msg  string
	seen chan struct{}
	once sync.Once
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	var e struct{ Msg string }
	if json.Unmarshal(p, &e) == nil && e.Msg == w.msg {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestAgent runs the agent until its first sync, stops it as SIGTERM would,
// and checks that the rules stay, or go with --cleanup-on-exit.
func TestAgent(t *testing.T) {
	for _, cleanupOnExit := range []bool{false, true} {
		t.Run(fmt.Sprintf("cleanup-on-exit=%t", cleanupOnExit), func(t *testing.T) {
			t.Parallel()
			ns := netns(t)
			args := []string{"--config", writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n"), "--netns=/run/netns/" + ns,
				"--metrics-bind-address=0", "--health-bind-address=0", fmt.Sprintf("--cleanup-on-exit=%t", cleanupOnExit)}
			stderr := &logWatch{msg: "synced", seen: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			exit := make(chan int, 1)
			go func() { exit <- run(ctx, args, nil, &bytes.Buffer{}, stderr) }()
			select {
			case <-stderr.seen:
			case code := <-exit:
				t.Fatalf("agent exited %d before syncing:\n%s", code, stderr)
			case <-time.After(10 * time.Second):
				cancel()
				<-exit
				t.Fatalf("no log entry %q within 10s:\n%s", stderr.msg, stderr)
			}
			listed, err := nftIn(ns, "", "list", "table", "inet", "masqd")
			if err != nil || !strings.Contains(listed, "elements = { 10.0.0.0/8 }") {
				t.Errorf("after the first sync: %v\n%s", err, listed)
			}
			cancel()
			if code := <-exit; code != 0 {
				t.Fatalf("agent exited %d:\n%s", code, stderr)
			}
			_, err = nftIn(ns, "", "list", "table", "inet", "masqd")
			if gone := err != nil; gone != cleanupOnExit {
				t.Errorf("table gone after exit: %t, want %t; log:\n%s", gone, cleanupOnExit, stderr)
			}
		})
	}
}

// ipMasqAgentRules is what ip-masq-agent writes with iptables-nft.
const ipMasqAgentRules = `*nat
:IP-MASQ-AGENT - [0:0]
-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A IP-MASQ-AGENT -d 10.0.0.0/8 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE
COMMIT
`

// installIPMasqAgent writes ip-masq-agent's rules into namespace ns.
func installIPMasqAgent(t *testing.T, ns string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "iptables-nft-restore", "--noflush")
	cmd.Stdin = strings.NewReader(ipMasqAgentRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
}

// legacyInstalled reports whether ip-masq-agent's chain is in ns.
func legacyInstalled(t *testing.T, ns string) bool {
	t.Helper()
	nat, err := nftIn(ns, "", "list", "table", "ip", "nat")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(nat, "IP-MASQ-AGENT")
}

// TestCleanupLegacy: cleanup --legacy refuses, and leaves ip-masq-agent's
// rules, while masqd's chain is not in the kernel (no table, or a table
// without it); it removes them once masqd has synced, or with --force.
// --once --remove-legacy-rules syncs, then removes them.
func TestCleanupLegacy(t *testing.T) {
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		t.Skip("kernel test skipped: iptables-nft-restore not installed (apt-get install -y iptables)")
	}
	ns := netns(t)
	nsFlag := "--netns=/run/netns/" + ns
	installIPMasqAgent(t, ns)
	refuse := func(when string) {
		t.Helper()
		code, out, errs := runArgs(t, "cleanup", "--legacy", nsFlag)
		if code != 1 || out != "" || !strings.Contains(errs, "refusing to remove ip-masq-agent's rules: masqd's chain postrouting of table inet masqd is not in the kernel") ||
			!strings.Contains(errs, "run masqd --once) first") || !strings.Contains(errs, "--force") {
			t.Errorf("%s: cleanup --legacy: exit %d, stdout %q, stderr %q; want exit 1 with the reason and the fix", when, code, out, errs)
		}
		if !legacyInstalled(t, ns) {
			t.Fatalf("%s: cleanup --legacy refused but removed ip-masq-agent's chain", when)
		}
	}
	refuse("no table")
	if _, err := nftIn(ns, "", "add", "table", "inet", "masqd"); err != nil {
		t.Fatal(err)
	}
	refuse("an empty table")

	cfg := []string{"--config", missingConfig(t), nsFlag}
	if code, _, errs := runArgs(t, append([]string{"--once"}, cfg...)...); code != 0 {
		t.Fatalf("--once: exit %d: %s", code, errs)
	}
	const removed = "removed ip nat chain IP-MASQ-AGENT (2 rules, 1 jump from POSTROUTING)\n"
	if code, out, errs := runArgs(t, "cleanup", "--legacy", nsFlag); code != 0 || out != removed || legacyInstalled(t, ns) {
		t.Errorf("cleanup --legacy after a sync: exit %d, %q, %s", code, out, errs)
	}

	installIPMasqAgent(t, ns)
	code, _, errs := runArgs(t, append([]string{"--once", "--remove-legacy-rules"}, cfg...)...)
	if logs := logged(t, errs, "removed ip-masq-agent's rules now that masqd's table is in sync (--remove-legacy-rules)"); code != 0 ||
		len(logs) != 1 || logs[0]["removed"] != strings.TrimPrefix(strings.TrimSuffix(removed, "\n"), "removed ") || legacyInstalled(t, ns) {
		t.Errorf("--once --remove-legacy-rules: exit %d, log:\n%s", code, errs)
	}

	if code, _, errs := runArgs(t, "cleanup", nsFlag); code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, errs)
	}
	installIPMasqAgent(t, ns)
	if code, out, errs := runArgs(t, "cleanup", "--legacy", "--force", nsFlag); code != 0 || out != removed || legacyInstalled(t, ns) {
		t.Errorf("cleanup --legacy --force without a table: exit %d, %q, %s", code, out, errs)
	}
}
