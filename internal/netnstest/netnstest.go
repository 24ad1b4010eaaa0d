// Package netnstest gives kernel tests throw-away network namespaces, and
// nft inside them. Nothing it does touches the caller's own namespace.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var seq atomic.Int64

// New creates a network namespace for one test, removed when the test
// ends, and returns its name: prefix, the process ID and a sequence
// number. Where that cannot work (not root, ip or nft missing) it skips the
// test with a message.
func New(t testing.TB, prefix string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test skipped: needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test skipped: %s not installed", bin)
		}
	}
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// Path is the bind mount of namespace ns, for --netns and nft.Open.
func Path(ns string) string { return "/run/netns/" + ns }

// Nft runs nft inside namespace ns with stdin and returns its output.
func Nft(ns, stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var (
	counterRE = regexp.MustCompile(` packets \d+ bytes \d+`)
	wrapRE    = regexp.MustCompile(`,\n\s+`)
)

// Canonical makes nft listings comparable with masqd's rendered text:
// counter values go, and element lists that nft wraps over several lines
// are joined.
func Canonical(s string) string {
	s = counterRE.ReplaceAllString(s, "")
	return wrapRE.ReplaceAllString(s, ", ")
}

// IP runs `ip -n ns ARGS` for each line of args (fields split on spaces)
// and fails the test if one fails.
func IP(t testing.TB, ns string, args ...string) {
	t.Helper()
	for _, a := range args {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, strings.Fields(a)...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", ns, a, err, out)
		}
	}
}

// WaitLocalRoute waits until namespace ns has a local route for addr: the
// kernel adds an IPv6 address's route only once the link has carrier, after
// `ip addr add` returns.
func WaitLocalRoute(t testing.TB, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fam := "-4"
		if strings.Contains(addr, ":") {
			fam = "-6"
		}
		out, err := exec.Command("ip", "-n", ns, fam, "route", "show", "table", "local", "type", "local", addr).CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no local route for %s in namespace %s after 10s: %v %s", addr, ns, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
