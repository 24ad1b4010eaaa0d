package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// End-to-end tests of masqd's settings beyond ip-masq-agent's: real
// connections through the kernel, checked by the source the receiver saw.

// TestExceptions: masqueradeCIDRs inside nonMasqueradeCIDRs, an exemption
// inside an exception, and an exception inside link-local, from drop-in
// files; explain names the file and line that decided.
func TestExceptions(t *testing.T) {
	b := newBed(t)
	dir := t.TempDir()
	drop := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	drop("00-base.yaml", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 172.16.0.0/12\n  - 192.168.0.0/16\n  - fd00::/8\n")
	drop("10-exceptions.yaml", "masqueradeCIDRs:\n  - 10.96.0.0/12\n  - 192.168.5.0/24\n  - 169.254.20.10/32\n  - fd00:96::/32\n")
	v6 := []string{"--enable-ipv6"}
	masqd(t, b, append([]string{"--once", "--config", dir}, v6...)...)
	want := only(t, "11.11.11.11", "203.0.113.10", "10.96.0.10", "192.168.5.10", "169.254.20.10", "100.64.0.10", "198.51.100.10",
		"2001:db8:1::10", "fd00:96::10")
	checkTraffic(t, b, want)
	checkExplain(t, dir, v6, want)
	out := explainOut(t, dir, v6, "10.96.0.10")
	if w := "decided by 10.96.0.0/12 in masqueradeCIDRs (" + filepath.Join(dir, "10-exceptions.yaml") + ":2), the most specific entry; " +
		"it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (" + filepath.Join(dir, "00-base.yaml") + ":2)"; !strings.Contains(out, w) {
		t.Errorf("explain 10.96.0.10:\n%s\nwant it to contain %q", out, w)
	}

	// A third file: an exemption inside an exception (three levels), and
	// an exception that turns 172.20/16 back to masquerading. The update
	// is in place.
	drop("20-nested.yaml", "nonMasqueradeCIDRs:\n  - 10.96.0.0/24\nmasqueradeCIDRs:\n  - 172.20.0.0/16\n")
	if lines, out := masqdLog(t, b, append([]string{"--once", "--config", dir}, v6...)...); len(findLog(lines, "synced", "op", "update")) != 1 {
		t.Errorf("the second apply was not an in-place update:\n%s", out)
	}
	want = only(t, "11.11.11.11", "203.0.113.10", "172.20.0.10", "192.168.5.10", "169.254.20.10", "100.64.0.10", "198.51.100.10",
		"2001:db8:1::10", "fd00:96::10")
	checkTraffic(t, b, want)
	checkExplain(t, dir, v6, want)
}

// TestSourceCIDRs: with masqueradeSourceCIDRs, only those sources are
// masqueraded; another address of the same pod network keeps its source,
// as inbound load-balancer and host traffic should.
func TestSourceCIDRs(t *testing.T) {
	b := newBed(t)
	other4, other6 := netip.MustParseAddr("10.244.1.3"), netip.MustParseAddr("fd00:244:1::3")
	// The extra IPv6 address is deprecated, so the kernel never picks it
	// for the pod's own connections.
	ip(t, "-n", b.PodNS, "addr", "add", other4.String()+"/24", "dev", "p0")
	ip(t, "-n", b.PodNS, "addr", "add", other6.String()+"/64", "dev", "p0", "nodad", "preferred_lft", "0")
	cfg := writeConfig(t, "masqueradeSourceCIDRs: [10.244.1.2/32, fd00:244:1::2/128]\n")
	masqd(t, b, "--once", "--config", cfg, "--enable-ipv6")
	checkTraffic(t, b, only(t, "11.11.11.11", "203.0.113.10", "100.64.0.10", "198.51.100.10", "2001:db8:1::10", "fd00:96::10"))
	for _, dst := range []string{"11.11.11.11", "10.96.0.10", "2001:db8:1::10"} {
		from := other4
		if strings.Contains(dst, ":") {
			from = other6
		}
		sourceFrom(t, b, from, dst, from)
		out := explainOut(t, cfg, []string{"--enable-ipv6", "--source", from.String()}, dst)
		if !strings.Contains(out, ": not masqueraded") {
			t.Errorf("explain --source %s %s: %s", from, dst, out)
		}
	}
}

// TestSNATAddress: --snat-address and --snat-address-ipv6 translate to a
// chosen address of the node rather than the uplink's primary one, as on
// a multi-homed node with a static egress IP.
func TestSNATAddress(t *testing.T) {
	b := newBed(t)
	egress4, egress6 := netip.MustParseAddr("100.115.0.99"), netip.MustParseAddr("fd00:115::99")
	ip(t, "-n", b.NodeNS, "addr", "add", egress4.String()+"/32", "dev", "n1")
	ip(t, "-n", b.NodeNS, "addr", "add", egress6.String()+"/128", "dev", "n1", "nodad", "preferred_lft", "0")
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\n")
	masqd(t, b, "--once", "--config", cfg, "--enable-ipv6", "--snat-address", egress4.String(), "--snat-address-ipv6", egress6.String())
	sourceFrom(t, b, netip.Addr{}, "11.11.11.11", egress4)
	sourceFrom(t, b, netip.Addr{}, "2001:db8:1::10", egress6)
	sourceFrom(t, b, netip.Addr{}, "10.96.0.10", testbed.PodIP4)
	sourceFrom(t, b, netip.Addr{}, "fd00:96::10", testbed.PodIP6)
	out := explainOut(t, cfg, []string{"--enable-ipv6", "--snat-address", egress4.String(), "--snat-address-ipv6", egress6.String()}, "11.11.11.11")
	if !strings.Contains(out, "masqueraded (snat to 100.115.0.99)") {
		t.Errorf("explain: %s", out)
	}

	// An address the node does not own is applied with a warning: its
	// replies come back only if something else routes it here.
	const foreign = " is not an address of this node: replies to it come back only if something else routes it here"
	if lines, out := masqdLog(t, b, "--once", "--config", cfg, "--enable-ipv6", "--snat-address", "100.115.0.98"); len(findLog(lines, "--snat-address"+foreign, "level", "warn", "address", "100.115.0.98")) != 1 {
		t.Errorf("no warning for a foreign --snat-address:\n%s", out)
	}
	lines, out := masqdLog(t, b, "--once", "--config", cfg, "--enable-ipv6", "--snat-address", egress4.String(), "--snat-address-ipv6", egress6.String())
	if len(findLog(lines, "--snat-address"+foreign))+len(findLog(lines, "--snat-address-ipv6"+foreign)) != 0 {
		t.Errorf("a warning for the node's own addresses:\n%s", out)
	}

	// Only IPv4 gets a chosen address: IPv6 is masqueraded as before.
	masqd(t, b, "--once", "--config", cfg, "--enable-ipv6", "--snat-address", egress4.String())
	sourceFrom(t, b, netip.Addr{}, "11.11.11.11", egress4)
	sourceFrom(t, b, netip.Addr{}, "2001:db8:1::10", testbed.NodeIP6)
	// Without the flag, masquerade again: ip-masq-agent's behaviour.
	masqd(t, b, "--once", "--config", cfg, "--enable-ipv6")
	sourceFrom(t, b, netip.Addr{}, "11.11.11.11", testbed.NodeIP4)
}

// ip runs an iproute2 command that changes one of the bed's namespaces.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// sourceFrom connects from the pod's address src (zero: the kernel's
// choice) to dst and checks the source the receiver saw.
func sourceFrom(t *testing.T, b *testbed.Bed, src netip.Addr, dst string, want netip.Addr) {
	t.Helper()
	got, err := b.SourceSeenFrom(context.Background(), src, netip.MustParseAddr(dst))
	if err != nil {
		t.Errorf("%s → %s: %v", src, dst, err)
		return
	}
	if got.Addr() != want {
		t.Errorf("%s → %s: the receiver saw %s, want %s", src, dst, got.Addr(), want)
	}
}

// explainOut runs `masqd explain` with flags for the addresses.
func explainOut(t *testing.T, cfg string, flags []string, addrs ...string) string {
	t.Helper()
	args := append(append([]string{"explain", "--config", cfg}, flags...), addrs...)
	out, err := exec.Command(masqdBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("masqd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
