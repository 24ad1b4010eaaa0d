package nft

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

var nsSeq atomic.Int64

// netns creates a throw-away network namespace for one test and removes it
// when the test ends. Kernel tests skip, visibly, when they cannot run.
func netns(t *testing.T) (name string, c *Conn) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test skipped: needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test skipped: %s not installed", bin)
		}
	}
	name = fmt.Sprintf("masqd-nfttest-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	c, err := Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, c
}

// nftIn runs nft inside the namespace.
func nftIn(t *testing.T, ns string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	counterRE = regexp.MustCompile(` packets \d+ bytes \d+`)
	wrapRE    = regexp.MustCompile(`,\n\s+`)
)

// canonical makes nft listings comparable: counter values go, and element
// lists that nft wraps over several lines are joined.
func canonical(s string) string {
	s = counterRE.ReplaceAllString(s, "")
	return wrapRE.ReplaceAllString(s, ", ")
}

func mustSync(t *testing.T, c *Conn, rs *Ruleset) Result {
	t.Helper()
	res, err := c.Sync(context.Background(), rs)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return res
}
