package main

import (
	"bytes"
	"context"
	"fmt"
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

			code, rendered, errs := runArgs(t, append([]string{"render"}, flags...)...)
			if code != 0 {
				t.Fatalf("render: exit %d: %s", code, errs)
			}
			if _, err := nftIn(ns, rendered, "-c", "-f", "-"); err != nil {
				t.Fatalf("nft rejects render's text: %v\n%s", err, rendered)
			}

			code, out, errs := runArgs(t, append([]string{"--once"}, kflags...)...)
			if code != 0 || out != "" || !strings.Contains(errs, `"msg":"synced","op":"create",`) || !strings.Contains(errs, `"reason":"once"`) {
				t.Fatalf("--once: exit %d, stdout %q, log:\n%s", code, out, errs)
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
			if code != 0 || !strings.Contains(errs, `"msg":"in sync; nothing changed"`) || strings.Contains(errs, `"msg":"synced"`) {
				t.Errorf("second --once: exit %d, want no change; log:\n%s", code, errs)
			}

			// Loaded over masqd's table, and again: the same table.
			for _, step := range []string{"render loaded over masqd's table", "render loaded again"} {
				if _, err := nftIn(ns, rendered, "-f", "-"); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				sameAsRender(step)
			}

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
		})
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

// logWatch is stderr for an agent under test: it keeps the log and closes
// seen when a line holds want.
type logWatch struct {
	want string
	seen chan struct{}
	once sync.Once
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(p, []byte(w.want)) {
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
			stderr := &logWatch{want: `"msg":"synced"`, seen: make(chan struct{})}
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
				t.Fatalf("no sync within 10s:\n%s", stderr)
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
