package e2e

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/test/e2e/testbed"
)

// masqdCode runs masqd in the node namespace and returns its exit code
// with its stdout and stderr apart.
func masqdCode(t *testing.T, b *testbed.Bed, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", b.NodeNS, masqdBin}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("masqd %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errb.String()
}

// TestDiffE2E: masqd diff on a node whose table someone edited by hand
// names both edits, exits 1, and changes nothing; in sync it says nothing.
func TestDiffE2E(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	masqd(t, b, "--once", "--config", cfg)
	c, err := nft.Open(b.NodePath())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen := func() uint32 {
		g, err := c.Generation()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	before := gen()
	if code, out, errs := masqdCode(t, b, "diff", "--config", cfg); code != 0 || out != "" || errs != "" {
		t.Errorf("in sync: exit %d, stdout %q, stderr %q; want 0 and nothing", code, out, errs)
	}
	if g := gen(); g != before {
		t.Errorf("diff in sync moved the generation from %d to %d", before, g)
	}
	for _, args := range [][]string{
		{"nft", "add", "element", "inet", "masqd", "nomasq-v4", "{ 203.0.113.0/24 }"},
		{"nft", "insert", "rule", "inet", "masqd", "postrouting", "ip", "daddr", "198.51.100.0/24", "counter", "accept"},
	} {
		if out, err := b.Exec(context.Background(), b.NodeNS, args[0], args[1:]...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	before = gen()
	code, out, errs := masqdCode(t, b, "diff", "--config", cfg)
	want := regexp.MustCompile(`^table inet masqd: a sync would change it in place:
chain postrouting:
-	rule 1, handle \d+: ip daddr 198\.51\.100\.0/24 counter accept
set nomasq-v4:
-	203\.0\.113\.0/24: not in the config
$`)
	if code != 1 || errs != "" || !want.MatchString(out) {
		t.Errorf("after edits by hand: exit %d, stderr %q, stdout:\n%s\nwant exit 1 and a match for:\n%s", code, errs, out, want)
	}
	if g := gen(); g != before {
		t.Errorf("diff moved the ruleset generation from %d to %d: it must only read", before, g)
	}
	// The edits still take effect: diff repaired nothing.
	checkTraffic(t, b, expect{"203.0.113.10": false, "198.51.100.10": false, "11.11.11.11": true})

	masqd(t, b, "--once", "--config", cfg)
	if code, out, _ := masqdCode(t, b, "diff", "--config", cfg); code != 0 || out != "" {
		t.Errorf("after --once: exit %d, stdout %q; want 0 and nothing", code, out)
	}
}

// TestRenderLoadedTwice: render's script, loaded on a node again and again
// (and over masqd's own table), leaves one table that masquerades as the
// config says.
func TestRenderLoadedTwice(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 203.0.113.0/24]\n")
	script, err := exec.Command(masqdBin, "render", "--config", cfg).Output()
	if err != nil {
		t.Fatalf("masqd render: %v", err)
	}
	load := func() {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(string(script))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f of render: %v\n%s", err, out)
		}
	}
	masqd(t, b, "--once", "--config", cfg)
	load()
	load()
	out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "chain", "inet", "masqd", "postrouting")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "counter packets"); n != 5 {
		t.Errorf("%d rules after loading render twice, want 5:\n%s", n, out)
	}
	checkTraffic(t, b, only(t, "11.11.11.11", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10"))
}
