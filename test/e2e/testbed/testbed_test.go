package testbed

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// designRuleset is the default config's ruleset as internal/nft/README.md draws it: the
// bed is checked against it without masqd, so a bed fault is not mistaken
// for a masqd fault.
const designRuleset = `table inet masqd {
	set nomasq-v4 {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 }
	}
	set nomasq-v6 {
		type ipv6_addr
		flags interval
	}
	chain postrouting {
		type nat hook postrouting priority srcnat + 10; policy accept;
		fib daddr type local counter return
		ip daddr 169.254.0.0/16 counter return
		ip daddr @nomasq-v4 counter return
		meta nfproto ipv6 counter return
		counter masquerade fully-random
	}
}
`

func newBed(t *testing.T) *Bed {
	t.Helper()
	if why := Skip(); why != "" {
		t.Skip("testbed test skipped: " + why)
	}
	b, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("remove bed: %v", err)
		}
	})
	return b
}

func TestTopology(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()

	// Without any NAT every destination answers and sees the pod: the
	// routes back to the pod work for both families.
	for _, d := range Destinations {
		want := PodIP4
		if d.Addr.Is6() {
			want = PodIP6
		}
		got, err := b.SourceSeen(ctx, d.Addr)
		if err != nil {
			t.Fatalf("no NAT: %v", err)
		}
		if got.Addr() != want {
			t.Errorf("no NAT: %s saw %s, want %s", d.Addr, got.Addr(), want)
		}
	}

	cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(designRuleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		dst  string
		want netip.Addr
	}{
		{"11.11.11.11", NodeIP4},
		{"100.64.0.10", NodeIP4},
		{"10.96.0.10", PodIP4},
		{"169.254.20.10", PodIP4},
		{"2001:db8:1::10", PodIP6},
	} {
		got, err := b.SourceSeen(ctx, netip.MustParseAddr(tc.dst))
		if err != nil {
			t.Fatalf("documented ruleset: %v", err)
		}
		if got.Addr() != tc.want {
			t.Errorf("documented ruleset: %s saw %s, want %s", tc.dst, got.Addr(), tc.want)
		}
	}
}

func TestSysctlsStayInTheirNamespace(t *testing.T) {
	b := newBed(t)
	for ns, want := range map[string]string{b.NodeNS: "1", b.PodNS: "0", b.WorldNS: "0"} {
		out, err := b.Exec(context.Background(), ns, "cat", "/proc/sys/net/ipv4/ip_forward")
		if err != nil {
			t.Fatalf("read ip_forward in %s: %v %s", ns, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("ip_forward in %s = %s, want %s", ns, got, want)
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	b := newBed(t)
	names := []string{b.PodNS, b.NodeNS, b.WorldNS}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range names {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after Close (stat: %v)", ns, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestRemoveStale: only names of beds whose process is gone are removed.
func TestRemoveStale(t *testing.T) {
	if why := Skip(); why != "" {
		t.Skip("testbed test skipped: " + why)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	tag := rand.Text()[:6]
	cases := []struct {
		name     string
		wantGone bool
	}{
		{fmt.Sprintf("%s%d-%s-node", Prefix, gone.Process.Pid, tag), true},
		{fmt.Sprintf("%s%d-%s-node", Prefix, os.Getpid(), tag), false},
		{fmt.Sprintf("%s1-%s-node", Prefix, tag), false}, // PID 1 is alive
		{fmt.Sprintf("%s%d-%s-other", Prefix, gone.Process.Pid, tag), false},
		{fmt.Sprintf("masqd-bench-%d-%s-node", gone.Process.Pid, tag), false},
	}
	for _, tc := range cases {
		if err := ipCmd(context.Background(), "netns", "add", tc.name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := os.Stat("/run/netns/" + tc.name); err == nil {
				_ = deleteNS(tc.name)
			}
		})
	}
	if err := removeStale(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		_, err := os.Stat("/run/netns/" + tc.name)
		if gotGone := os.IsNotExist(err); gotGone != tc.wantGone {
			t.Errorf("%s removed: %v, want %v", tc.name, gotGone, tc.wantGone)
		}
	}
}

// TestPortRange shows that the bed sees the source port: with a masquerade
// port range (loaded by nft, as masqd cannot send one yet) every
// connection's port is inside it.
func TestPortRange(t *testing.T) {
	b := newBed(t)
	ruleset := strings.Replace(designRuleset, "counter masquerade fully-random", "meta l4proto tcp counter masquerade to :40000-40009", 1)
	cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	for range 5 {
		got, err := b.SourceSeen(context.Background(), netip.MustParseAddr("11.11.11.11"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Addr() != NodeIP4 || got.Port() < 40000 || got.Port() > 40009 {
			t.Errorf("source %s, want %s with a port in 40000-40009", got, NodeIP4)
		}
	}
}
