package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/nft"
)

// TestExplainRanges: a prefix gets one line when uniform, otherwise a
// heading and one line per sub-range with its verdict and deciding entry.
func TestExplainRanges(t *testing.T) {
	nested := writeConfig(t, "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.1.0.0/16\n")
	exceptions := writeConfig(t, "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.20.30.0/24\n"+
		"masqueradeCIDRs:\n  - 10.20.0.0/16\n")
	twoExceptions := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs:\n  - 10.20.0.0/16\n  - 10.21.0.0/16\n")
	beside := writeConfig(t, "nonMasqueradeCIDRs: [169.255.0.0/16]\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"uniform", []string{"--config", nested, "10.0.0.0/8"},
			"10.0.0.0/8: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8 at " + nested + ":2, 10.1.0.0/16 at " + nested + ":3)\n"},
		{"uniform, masqueraded", []string{"--config", nested, "203.0.113.0/24"},
			"203.0.113.0/24: masqueraded (rule 5: \"masqd: outbound traffic is masqueraded\")\n"},
		{"mixed", []string{"--config", exceptions, "10.20.0.0/16"},
			"10.20.0.0/16: partly masqueraded, in 3 ranges:\n" +
				"  10.20.0.0-10.20.29.255: masqueraded: decided by 10.20.0.0/16 in masqueradeCIDRs (" + exceptions + ":5), the most specific entry; it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (" + exceptions + ":2)\n" +
				"  10.20.30.0/24: not masqueraded: decided by 10.20.30.0/24 in nonMasqueradeCIDRs (" + exceptions + ":3), the most specific entry; it overrides 10.20.0.0/16 in masqueradeCIDRs (" + exceptions + ":5)\n" +
				"  10.20.31.0-10.20.255.255: masqueraded: decided by 10.20.0.0/16 in masqueradeCIDRs (" + exceptions + ":5), the most specific entry; it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (" + exceptions + ":2)\n"},
		{"partly, without masqueradeCIDRs", []string{"--config", nested, "169.254.0.0/15"},
			"169.254.0.0/15: partly masqueraded, in 2 ranges:\n" +
				"  169.254.0.0/16: not masqueraded (rule 2: \"masqd: link-local is not masqueraded (masqLinkLocal: false)\")\n" +
				"  169.255.0.0/16: masqueraded (rule 5: \"masqd: outbound traffic is masqueraded\")\n"},
		{"all exempt, for different reasons", []string{"--config", beside, "169.254.0.0/15"},
			"169.254.0.0/15: not masqueraded, decided differently in 2 ranges:\n" +
				"  169.254.0.0/16: not masqueraded (rule 2: \"masqd: link-local is not masqueraded (masqLinkLocal: false)\")\n" +
				"  169.255.0.0/16: not masqueraded: in nonMasqueradeCIDRs 169.255.0.0/16 (from 169.255.0.0/16 at " + beside + ":1)\n"},
		{"all masqueraded, for different reasons", []string{"--config", twoExceptions, "10.20.0.0/15"},
			"10.20.0.0/15: masqueraded, decided differently in 2 ranges:\n" +
				"  10.20.0.0/16: masqueraded: decided by 10.20.0.0/16 in masqueradeCIDRs (" + twoExceptions + ":3), the most specific entry; it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (" + twoExceptions + ":1)\n" +
				"  10.21.0.0/16: masqueraded: decided by 10.21.0.0/16 in masqueradeCIDRs (" + twoExceptions + ":4), the most specific entry; it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (" + twoExceptions + ":1)\n"},
		{"mapped IPv4 prefix", []string{"--config", nested, "::ffff:10.1.0.0/112"},
			"10.1.0.0/16: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8 at " + nested + ":2, 10.1.0.0/16 at " + nested + ":3)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"explain"}, tc.args...)...)
			if code != 0 || out != tc.want {
				t.Errorf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, errs, out, tc.want)
			}
		})
	}
}

// TestExplainArguments: flags may follow the addresses; a bad argument is
// reported, the others are still answered, and the command fails at the end.
func TestExplainArguments(t *testing.T) {
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	const answer = "10.0.0.1: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8 at "
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		out, errs string
	}{
		{"flags after the address", []string{"10.0.0.1", "--config", cfg}, 0, answer + cfg + ":1)\n", ""},
		{"flags between addresses", []string{"10.0.0.1", "--config", cfg, "10.0.0.1"}, 0, strings.Repeat(answer+cfg+":1)\n", 2), ""},
		{"bad ones reported, the rest answered", []string{"--config", cfg, "not-an-ip", "10.0.0.1", "10.1.2.3/8", "10.0.0.1/33"}, 1,
			answer + cfg + ":1)\n",
			"masqd: explain: \"not-an-ip\" is not an IP address or prefix\n" +
				"masqd: explain: \"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?\n" +
				"masqd: explain: \"10.0.0.1/33\" is not an IP address or prefix\n" +
				"masqd: explain: 3 of 4 arguments could not be read\n"},
		{"after --, no flags", []string{"--config", cfg, "--", "--source"}, 1, "",
			"masqd: explain: \"--source\" is not an IP address or prefix\nmasqd: explain: 1 of 1 arguments could not be read\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"explain"}, tc.args...)...)
			if code != tc.code || out != tc.out || errs != tc.errs {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", code, tc.code, out, tc.out, errs, tc.errs)
			}
		})
	}
}

// TestExplainAgreesWithCheck: with masqueradeSourceCIDRs that list no IPv6
// source and --enable-ipv6, check warns that no IPv6 traffic is
// masqueraded, and explain says so for every IPv6 destination.
func TestExplainAgreesWithCheck(t *testing.T) {
	cfg := writeConfig(t, "masqueradeSourceCIDRs: [10.244.0.0/16]\n")
	_, out, _ := runArgs(t, "check", "--enable-ipv6", "--config", cfg)
	const warning = "masqueradeSourceCIDRs: lists no IPv6 source, so no IPv6 traffic is masqueraded although --enable-ipv6 is set"
	if !strings.Contains(out, warning) {
		t.Errorf("check does not warn %q:\n%s", warning, out)
	}
	code, out, errs := runArgs(t, "explain", "--enable-ipv6", "--config", cfg, "2001:db8::1")
	want := `2001:db8::1: not masqueraded (rule 3: "masqd: only masqueradeSourceCIDRs are masqueraded"); ` +
		"masqueradeSourceCIDRs lists no IPv6 source, so no IPv6 traffic is masqueraded\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, stderr %q\ngot  %s\nwant %s", code, errs, out, want)
	}
	// A source that is listed still makes IPv4 masqueraded.
	_, out, _ = runArgs(t, "explain", "--enable-ipv6", "--config", cfg, "203.0.113.1")
	if !strings.HasPrefix(out, "203.0.113.1: masqueraded") {
		t.Errorf("explain 203.0.113.1: %s", out)
	}
}

// TestExplainWithoutRoutes: when the routing table cannot be read, explain
// says what it assumes and still answers.
func TestExplainWithoutRoutes(t *testing.T) {
	cfg := missingConfig(t)
	code, out, errs := runArgs(t, "explain", "--config", cfg, "--netns", "/nonexistent/netns", "127.0.0.2")
	wantErr := "masqd: explain: cannot read the kernel's local routes (list routes: open network namespace: open /nonexistent/netns: no such file or directory); " +
		"answering as if no destination were local to this node\n"
	want := `127.0.0.2: masqueraded (rule 5: "masqd: outbound traffic is masqueraded")` + "\n"
	if code != 0 || out != want || errs != wantErr {
		t.Errorf("exit %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", code, out, want, errs, wantErr)
	}
}

// TestExplainLocal: 127.0.0.2 is no interface's address, but the kernel
// routes all of 127.0.0.0/8 locally, so `fib daddr type local` returns it.
// It runs in the test's own namespace, read-only.
func TestExplainLocal(t *testing.T) {
	routes, err := nft.LocalRoutes("")
	if err != nil || !slices.Contains(routes, netip.MustParsePrefix("127.0.0.0/8")) {
		t.Skipf("this namespace has no local route 127.0.0.0/8 (%v)", err)
	}
	_, out, errs := runArgs(t, "explain", "--config", missingConfig(t), "127.0.0.2")
	want := `127.0.0.2: not masqueraded (rule 1: "masqd: local destinations are not masqueraded"); ` +
		"it is local to this node: the kernel's routing table has a local route for it\n"
	if out != want {
		t.Errorf("stderr %q\ngot  %s\nwant %s", errs, out, want)
	}
}
