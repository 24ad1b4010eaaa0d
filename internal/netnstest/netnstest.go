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
