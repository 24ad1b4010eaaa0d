package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
)

// TestExplainAgreesWithKernel: in a throw-away namespace with local routes
// beyond its addresses (127.0.0.0/8, `ip route add local`), masqd explain
// says for 127.0.0.2, every local route and a few routed destinations what
// the kernel does with a real datagram: the counter of the rule that
// decided it is the one that moves.
func TestExplainAgreesWithKernel(t *testing.T) {
	ns := netns(t)
	netnstest.IP(t, ns,
		"link set lo up",
		"link add v0 type veth peer name v1",
		"link set v0 addrgenmode none",
		"link set v1 addrgenmode none",
		"link set v0 up",
		"link set v1 up",
		"addr add 192.0.2.1/24 dev v0",
		"addr add 2001:db8::1/64 dev v0 nodad",
		"route add local 198.51.100.0/24 dev lo",
		"route add 203.0.113.0/24 dev v0",
		"route add 10.0.0.0/8 dev v0",
		"-6 route add 2001:db8:1::/64 dev v0")
	netnstest.WaitLocalRoute(t, ns, "2001:db8::1")
	flags := []string{"--config", missingConfig(t), "--enable-ipv6", "--netns", netnstest.Path(ns)}
	if code, _, errs := runArgs(t, append([]string{"--once"}, flags...)...); code != 0 {
		t.Fatalf("--once: exit %d: %s", code, errs)
	}
	routes := kernelLocalRoutes(t, ns)
	if len(routes) < 6 {
		t.Fatalf("want at least 6 local routes (127.0.0.0/8, 127.0.0.1, 192.0.2.1, 198.51.100.0/24, ::1, 2001:db8::1), got %v", routes)
	}
	dsts := []string{"127.0.0.2", "203.0.113.7", "10.1.2.3", "2001:db8:1::7"}
	for _, p := range routes {
		a := p.Addr()
		if !p.IsSingleIP() {
			a = nft.IntervalOf(p).Last.Prev() // inside, and neither end: not 127.0.0.2, asked already
		}
		dsts = append(dsts, a.String())
	}
	t.Logf("probing %v", dsts)
	for i, dst := range dsts {
		before := ruleCounters(t, ns)
		sendDatagram(t, ns, dst, 40000+i)
		after := ruleCounters(t, ns)
		var moved []string
		for k, r := range after {
			if r != before[k] {
				moved = append(moved, r[0])
			}
		}
		if len(moved) != 1 {
			t.Fatalf("a datagram to %s moved %d rule counters, want 1: %q\nbefore %v\nafter  %v", dst, len(moved), moved, before, after)
		}
		kernelMasq := moved[0] == "masqd: outbound traffic is masqueraded"
		kernelLocal := moved[0] == "masqd: local destinations are not masqueraded"
		code, out, errs := runArgs(t, append([]string{"explain", dst}, flags...)...)
		if code != 0 || errs != "" {
			t.Fatalf("explain %s: exit %d: %s", dst, code, errs)
		}
		masq := strings.HasPrefix(out, dst+": masqueraded")
		local := strings.Contains(out, "; it is local to this node")
		if masq != kernelMasq || local != kernelLocal || !strings.Contains(out, `"`+moved[0]+`"`) && !strings.Contains(out, "in nonMasqueradeCIDRs") {
			t.Errorf("explain says %s  the kernel's deciding rule was %q", out, moved[0])
		}
	}
	// A local route as a whole is one answer: local.
	for _, p := range routes {
		_, out, _ := runArgs(t, append([]string{"explain", p.String()}, flags...)...)
		if strings.Count(out, "\n") != 1 || !strings.Contains(out, "; it is local to this node") {
			t.Errorf("explain %s: %s", p, out)
		}
	}
}

// kernelLocalRoutes lists the namespace's local routes as `ip` prints them.
func kernelLocalRoutes(t *testing.T, ns string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, fam := range []string{"-4", "-6"} {
		b, err := exec.Command("ip", "-n", ns, fam, "route", "show", "table", "local", "type", "local").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route show: %v: %s", err, b)
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "local" {
				t.Fatalf("unexpected route line %q", line)
			}
			p, err := netip.ParsePrefix(f[1])
			if err != nil {
				a := netip.MustParseAddr(f[1])
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out = append(out, p)
		}
	}
	return out
}

var ruleCounterRE = regexp.MustCompile(`counter packets (\d+) bytes \d+ .*comment "([^"]+)"`)

// ruleCounters lists the comment and packet counter of each rule of
// masqd's chain, in order: a NAT chain counts connections.
func ruleCounters(t *testing.T, ns string) [][2]string {
	t.Helper()
	out, err := nftIn(ns, "", "list", "chain", "inet", "masqd", "postrouting")
	if err != nil {
		t.Fatal(err)
	}
	var rules [][2]string
	for _, sm := range ruleCounterRE.FindAllStringSubmatch(out, -1) {
		rules = append(rules, [2]string{sm[2], sm[1]})
	}
	if len(rules) == 0 {
		t.Fatalf("no rule counters in:\n%s", out)
	}
	return rules
}

// sendDatagram sends one UDP datagram from inside the namespace; nothing
// needs to listen, the NAT chain sees it on the way out.
func sendDatagram(t *testing.T, ns, dst string, port int) {
	t.Helper()
	script := fmt.Sprintf("echo masqd-test > /dev/udp/%s/%d", dst, port)
	if out, err := exec.Command("ip", "netns", "exec", ns, "bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("send a datagram to %s: %v: %s", dst, err, out)
	}
}
