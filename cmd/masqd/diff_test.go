package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
)

// TestDiff runs masqd diff against a throw-away namespace: missing table,
// in sync, foreign changes, a bad config; it never writes.
func TestDiff(t *testing.T) {
	ns := netns(t)
	p := writeConfig(t, "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.1.0.0/16\n  - 192.0.2.0/24\n")
	diff := []string{"diff", "--config", p, "--netns=" + netnstest.Path(ns)}
	c, err := nft.Open(netnstest.Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen := func() uint32 {
		t.Helper()
		g, err := c.Generation()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	before := gen()
	code, out, errs := runArgs(t, diff...)
	wantStart := "table inet masqd is missing; a sync would create it:\nchain postrouting:\n" +
		`+	rule 1: fib daddr type local counter return comment "masqd: local destinations are not masqueraded"` + "\n"
	wantEnd := "set nomasq-v4:\n" +
		"+\t10.0.0.0/8: from nonMasqueradeCIDRs 10.0.0.0/8 (" + p + ":2), nonMasqueradeCIDRs 10.1.0.0/16 (" + p + ":3)\n" +
		"+\t192.0.2.0/24: from nonMasqueradeCIDRs 192.0.2.0/24 (" + p + ":4)\n" +
		"set nomasq-v6:\n"
	if code != 1 || errs != "" || !strings.HasPrefix(out, wantStart) || !strings.HasSuffix(out, wantEnd) {
		t.Errorf("no table: exit %d, stderr %q, stdout:\n%s\nwant exit 1 and stdout starting with\n%s\nand ending with\n%s", code, errs, out, wantStart, wantEnd)
	}
	if g := gen(); g != before {
		t.Errorf("diff moved the generation from %d to %d", before, g)
	}

	if code, _, errs := runArgs(t, "--once", "--config", p, "--netns="+netnstest.Path(ns)); code != 0 {
		t.Fatalf("--once: exit %d: %s", code, errs)
	}
	before = gen()
	if code, out, errs := runArgs(t, diff...); code != 0 || out != "" || errs != "" {
		t.Errorf("in sync: exit %d, stdout %q, stderr %q; want 0 and nothing", code, out, errs)
	}
	if g := gen(); g != before {
		t.Errorf("diff in sync moved the generation from %d to %d", before, g)
	}

	// By hand: an element and a rule that are not in the config.
	if _, err := nftIn(ns, "", "add", "element", "inet", "masqd", "nomasq-v4", "{ 198.51.100.7 }"); err != nil {
		t.Fatal(err)
	}
	if _, err := nftIn(ns, "", "add", "rule", "inet", "masqd", "postrouting", "ip", "daddr", "203.0.113.9", "counter", "accept"); err != nil {
		t.Fatal(err)
	}
	before = gen()
	code, out, errs = runArgs(t, diff...)
	listed := mustNft(t, ns, "-a", "list", "chain", "inet", "masqd", "postrouting")
	m := regexp.MustCompile(`203\.0\.113\.9 counter .* accept # handle (\d+)`).FindStringSubmatch(listed)
	if m == nil {
		t.Fatalf("the rule added by hand is not listed:\n%s", listed)
	}
	want := "table inet masqd: a sync would change it in place:\n" +
		"chain postrouting:\n" +
		"-\trule 6, handle " + m[1] + ": ip daddr 203.0.113.9 counter accept\n" +
		"set nomasq-v4:\n" +
		"-\t198.51.100.7: not in the config\n"
	if code != 1 || errs != "" || out != want {
		t.Errorf("after changes by hand: exit %d, stderr %q, stdout:\n%s\nwant exit 1 and:\n%s", code, errs, out, want)
	}
	if g := gen(); g != before {
		t.Errorf("diff moved the generation from %d to %d", before, g)
	}
	checkDiffCannotTell(t, ns, p)
}

// checkDiffCannotTell runs masqd diff where it cannot tell, with a bad
// config and without the namespace: exit 2 with the reason.
func checkDiffCannotTell(t *testing.T, ns, p string) {
	t.Helper()
	bad := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.1/8]\n")
	code, out, errs := runArgs(t, "diff", "--config", bad, "--netns="+netnstest.Path(ns))
	if code != 2 || out != "" || !strings.HasPrefix(errs, bad+":1:22: nonMasqueradeCIDRs[0]: 10.0.0.1/8 has host bits set") {
		t.Errorf("bad config: exit %d, stdout %q, stderr %q; want 2 and the problem", code, out, errs)
	}
	code, _, errs = runArgs(t, "diff", "--config", p, "--netns=/run/netns/masqd-cmdtest-does-not-exist")
	if code != 2 || !strings.Contains(errs, "open network namespace: ") {
		t.Errorf("no namespace: exit %d, stderr %q; want 2", code, errs)
	}
}

func mustNft(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := nftIn(ns, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
