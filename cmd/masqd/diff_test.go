package main

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
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

	// It cannot tell: exit 2 with the reason.
	bad := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.1/8]\n")
	code, out, errs = runArgs(t, "diff", "--config", bad, "--netns="+netnstest.Path(ns))
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

// TestPrintDiff pins diff's text for what the kernel tests cannot easily
// produce: rules nft encoded, refills, optional and foreign sets,
// exceptions with the link-local exemption, and a replace.
func TestPrintDiff(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs: [10.20.0.0/16]\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n")
	cfg, err := config.Load(p, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}
	rs := nft.Build(cfg, opts)
	iv := func(s string) nft.Interval { return nft.IntervalOf(netip.MustParsePrefix(s)) }
	from := func(set string, iv nft.Interval) string { return provenance(cfg, opts, set, iv) }
	for _, tc := range []struct {
		name string
		d    nft.Diff
		want string
	}{
		{"update", nft.Diff{Op: nft.OpUpdate,
			Rules: []nft.RuleChange{
				{Position: 2, Handle: 5, Text: "ip daddr 169.254.0.0/16 counter return"},
				{Add: true, Position: 2, Text: "ip daddr 169.254.0.0/16 counter return"},
				{Add: true, Position: 3, Text: rs.Rules[2].String()},
			},
			Sets: []nft.SetDiff{
				{Name: nft.SetV4, Refill: true, Added: []nft.Interval{rs.Set(nft.SetV4).Intervals[0], iv("169.254.0.0/16")}},
				{Name: nft.SetSrcV4, Created: true, Added: []nft.Interval{iv("10.244.0.0/16")}},
				{Name: "by-hand", Deleted: true},
			}},
			"table inet masqd: a sync would change it in place:\n" +
				"chain postrouting:\n" +
				"~\trule 2, handle 5: ip daddr 169.254.0.0/16 counter return (encoded differently, as nft -f writes it; a sync rewrites it)\n" +
				"+\trule 3: " + rs.Rules[2].String() + "\n" +
				"set nomasq-v4: its elements are not in masqd's encoding (as nft -f writes them); a sync would refill it\n" +
				"+\t10.0.0.0-10.19.255.255: from nonMasqueradeCIDRs 10.0.0.0/8 (" + p + ":1)\n" +
				"+\t169.254.0.0/16: from the link-local exemption 169.254.0.0/16 (masqLinkLocal: false)\n" +
				"set masq-src-v4: missing; a sync would create it\n" +
				"+\t10.244.0.0/16: from masqueradeSourceCIDRs 10.244.0.0/16 (" + p + ":3)\n" +
				"set by-hand: not one of masqd's; a sync would delete it\n"},
		{"replace", nft.Diff{Op: nft.OpReplace, Reason: "table has 2 chains, want 1"},
			"table inet masqd: a sync would replace it whole: table has 2 chains, want 1\n"},
	} {
		var b strings.Builder
		printDiff(&b, &tc.d, rs, from)
		if b.String() != tc.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.name, b.String(), tc.want)
		}
	}
}
