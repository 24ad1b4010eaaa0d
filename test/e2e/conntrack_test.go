package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// flowInterval is how often the long-lived flows send.
const flowInterval = 100 * time.Millisecond

// Configs of the conntrack tests. From ctBefore to ctAfter, 192.168.5.10,
// 172.20.0.10 and fd00:96::10 become masqueraded, 11.11.11.11,
// 198.51.100.10 and 2001:db8:1::10 become exempt; 10.96.0.10 and
// 203.0.113.10 keep their verdicts.
const (
	ctBefore = "nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fd00::/8]\n"
	ctAfter  = "nonMasqueradeCIDRs: [10.0.0.0/8, 11.11.11.11/32, 198.51.100.0/24, fd00:115::/64, fd00:244::/32, 2001:db8::/32]\n"
)

// foreignSNAT is a table of another owner (as kube-proxy's or a CNI's) that
// translates two UDP flows at an earlier priority than masqd's chain.
const foreignSNAT = `
table ip foreign {
	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		udp sport { 40010, 40011 } snat ip to 100.115.0.3
	}
}`

var foreignAddr = netip.MustParseAddr("100.115.0.3")

func udpFlow(t *testing.T, b *testbed.Bed, port uint16, dst string) *testbed.Flow {
	t.Helper()
	f, err := b.StartUDPFlow(port, netip.MustParseAddr(dst), flowInterval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func tcpFlow(t *testing.T, b *testbed.Bed, dst string) *testbed.Flow {
	t.Helper()
	f, err := b.StartTCPFlow(netip.MustParseAddr(dst), flowInterval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func startEcho(t *testing.T, b *testbed.Bed) {
	t.Helper()
	e, err := b.StartEcho()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
}

// flowSees waits until the world sees want as f's source, and fails unless
// that happened within limit of since.
func flowSees(t *testing.T, name string, f *testbed.Flow, want netip.Addr, since time.Time, limit time.Duration) {
	t.Helper()
	at, err := f.WaitSource(t.Context(), want, since, limit+2*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	d := at.Sub(since)
	t.Logf("%s: the world saw %s %s after", name, want, d.Round(time.Millisecond))
	if d > limit {
		t.Errorf("%s: the world saw the new source %s after %s, want within %s", name, want, d.Round(time.Millisecond), limit)
	}
}

// metricValue reads one sample of the agent's metrics; 0 when absent.
func metricValue(t *testing.T, p *agentProc, sample string) float64 {
	t.Helper()
	_, body, err := httpBody(p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// TestConntrackReconcile: a config change reaches UDP flows that are
// already open, in both directions of change and both families, within a
// second; unrelated flows and, by default, TCP connections keep their
// entries. Flows that a foreign table translates keep their source.
func TestConntrackReconcile(t *testing.T) {
	b := newBed(t)
	startEcho(t, b)
	addForeignSNAT(t, b)
	cfg := writeConfig(t, ctBefore)
	p, url := startAgent(t, b, cfg, "--enable-ipv6")
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))

	flows := []ctFlow{
		{"udp to 192.168.5.10", udpFlow(t, b, 40000, "192.168.5.10"), testbed.PodIP4, testbed.NodeIP4},
		{"udp to 11.11.11.11", udpFlow(t, b, 40001, "11.11.11.11"), testbed.NodeIP4, testbed.PodIP4},
		{"udp to fd00:96::10", udpFlow(t, b, 40002, "fd00:96::10"), testbed.PodIP6, testbed.NodeIP6},
		{"udp to 2001:db8:1::10", udpFlow(t, b, 40003, "2001:db8:1::10"), testbed.NodeIP6, testbed.PodIP6},
	}
	same := []ctFlow{
		{"unrelated udp to 10.96.0.10", udpFlow(t, b, 40004, "10.96.0.10"), testbed.PodIP4, testbed.PodIP4},
		{"unrelated udp to 203.0.113.10", udpFlow(t, b, 40005, "203.0.113.10"), testbed.NodeIP4, testbed.NodeIP4},
		{"foreign-translated udp to 172.20.0.10", udpFlow(t, b, 40010, "172.20.0.10"), foreignAddr, foreignAddr},
		{"foreign-translated udp to 198.51.100.10", udpFlow(t, b, 40011, "198.51.100.10"), foreignAddr, foreignAddr},
		{"tcp to 192.168.5.10", tcpFlow(t, b, "192.168.5.10"), testbed.PodIP4, testbed.PodIP4},
	}
	for _, f := range append(flows, same...) {
		flowSees(t, f.name+" at start", f.f, f.before, time.Now(), 5*time.Second)
	}

	// There and back: each flow moves to the new source within a second
	// of the write, then back.
	for i, step := range []struct {
		name, cfg string
		want      func(ctFlow) netip.Addr
	}{
		{"change", ctAfter, func(f ctFlow) netip.Addr { return f.after }},
		{"change back", ctBefore, func(f ctFlow) netip.Addr { return f.before }},
	} {
		written := time.Now()
		replaceFile(t, cfg, step.cfg)
		for _, f := range flows {
			flowSees(t, step.name+": "+f.name, f.f, step.want(f), written, time.Second)
		}
		// Four flows and the foreign translation to the newly exempt
		// destination (see below) per step.
		want := float64(5 * (i + 1))
		eventually(t, settle, "removed entries counted", func() error {
			if got := metricValue(t, p, `masqd_conntrack_entries_removed_total{protocol="udp"}`); got != want {
				return fmt.Errorf("masqd_conntrack_entries_removed_total{protocol=\"udp\"} = %v, want %v", got, want)
			}
			return nil
		})
	}
	checkUntouched(t, p, same)
	// The sync log names the changed ranges and what went.
	named := false
	for _, l := range findLog(agentLog(t, p), "synced", "conntrack.removed", "5") {
		ranges, _ := field(l, "conntrack.changed_ranges").([]any)
		named = named || slices.Contains(ranges, any("192.168.0.0/16"))
	}
	if !named {
		t.Errorf("no sync log line names 192.168.0.0/16 in conntrack.changed_ranges and conntrack.removed 5:\n%v", findLog(agentLog(t, p), "synced"))
	}
}

// ctFlow is a flow of TestConntrackReconcile and the source the world sees
// for it before and after the config change.
type ctFlow struct {
	name          string
	f             *testbed.Flow
	before, after netip.Addr
}

// addForeignSNAT gives the node foreignAddr and a table of another owner
// that translates some flows to it.
func addForeignSNAT(t *testing.T, b *testbed.Bed) {
	t.Helper()
	if out, err := b.Exec(t.Context(), b.NodeNS, "ip", "addr", "add", foreignAddr.String()+"/24", "dev", "n1"); err != nil {
		t.Fatalf("add the foreign SNAT address: %v: %s", err, out)
	}
	if out, err := b.Exec(t.Context(), b.NodeNS, "sh", "-c", "echo '"+foreignSNAT+"' | nft -f -"); err != nil {
		t.Fatalf("add the foreign table: %v: %s", err, out)
	}
}

// checkUntouched checks that the flows in same kept their source and their
// replies throughout, and that no TCP entry was removed and no reconcile
// failed under --conntrack-reconcile=udp.
func checkUntouched(t *testing.T, p *agentProc, same []ctFlow) {
	t.Helper()
	time.Sleep(5 * flowInterval)
	for _, f := range same {
		if s := f.f.Seen(); len(s) != 1 || s[0].Source.Addr() != f.before {
			t.Errorf("%s: the world saw %v, want %s throughout", f.name, s, f.before)
		}
		if since := time.Since(f.f.LastReply()); since > 5*flowInterval {
			t.Errorf("%s: no reply for %s", f.name, since)
		}
	}
	if n := same[len(same)-1].f.Resets(); n != 0 {
		t.Errorf("tcp to 192.168.5.10: %d resets under --conntrack-reconcile=udp, want 0", n)
	}
	if n := metricValue(t, p, `masqd_conntrack_entries_removed_total{protocol="tcp"}`); n != 0 {
		t.Errorf("%v tcp entries removed under --conntrack-reconcile=udp", n)
	}
	if n := metricValue(t, p, "masqd_conntrack_reconcile_errors_total"); n != 0 {
		t.Errorf("%v reconcile errors", n)
	}
}

// TestConntrackReconcileAll: with --conntrack-reconcile=all, a TCP
// connection to a destination whose verdict changed is moved too: it is
// reset, and the client's next connection takes the new verdict.
func TestConntrackReconcileAll(t *testing.T) {
	b := newBed(t)
	startEcho(t, b)
	cfg := writeConfig(t, ctBefore)
	p, url := startAgent(t, b, cfg, "--enable-ipv6", "--conntrack-reconcile=all")
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))
	tcp := tcpFlow(t, b, "192.168.5.10")
	flowSees(t, "tcp to 192.168.5.10 at start", tcp, testbed.PodIP4, time.Now(), 5*time.Second)

	replaceFile(t, cfg, ctAfter)
	// The reset takes the server's RST, then a new connection.
	flowSees(t, "tcp to 192.168.5.10 after the change", tcp, testbed.NodeIP4, time.Now(), 5*time.Second)
	if tcp.Resets() == 0 {
		t.Errorf("the tcp flow moved without a reset")
	}
	if n := metricValue(t, p, `masqd_conntrack_entries_removed_total{protocol="tcp"}`); n != 1 {
		t.Errorf("%v tcp entries removed, want 1", n)
	}
}

// TestFlowsCommand: `masqd flows --port P` names the pod behind the node's
// translated port P, for UDP and TCP.
func TestFlowsCommand(t *testing.T) {
	b := newBed(t)
	startEcho(t, b)
	cfg := writeConfig(t, ctBefore)
	_, url := startAgent(t, b, cfg, "--enable-ipv6")
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))
	for _, f := range []struct {
		name, proto string
		flow        *testbed.Flow
		pod         string
	}{
		{"udp", "udp", udpFlow(t, b, 40020, "11.11.11.11"), " 10.244.1.2:40020 "},
		{"tcp", "tcp", tcpFlow(t, b, "203.0.113.10"), " 10.244.1.2:"},
	} {
		flowSees(t, f.name+" flow", f.flow, testbed.NodeIP4, time.Now(), 5*time.Second)
		node := f.flow.Seen()[0].Source
		out := masqd(t, b, "flows", "--port", strconv.Itoa(int(node.Port())))
		t.Logf("masqd flows --port %d:\n%s", node.Port(), out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], f.proto+" ") || !strings.Contains(lines[1], " "+node.String()+" ") ||
			!strings.Contains(lines[1], f.pod) {
			t.Errorf("masqd flows --port %d for the %s flow:\n%s\nwant one %s line naming %s behind %s", node.Port(), f.name, out, f.proto, testbed.PodIP4, node)
		}
	}
	if out := masqd(t, b, "flows", "--destination", "10.0.0.0/8"); !strings.Contains(out, "no matching translations") {
		t.Errorf("masqd flows --destination 10.0.0.0/8 (exempt, never translated):\n%s", out)
	}
}
