package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/test/e2e/testbed"
)

// masqdBin is the binary under test: MASQD_BIN, or one built for this run.
var masqdBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	masqdBin = os.Getenv("MASQD_BIN")
	if masqdBin == "" && testbed.Skip() == "" {
		dir, err := os.MkdirTemp("", "masqd-e2e-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		masqdBin = filepath.Join(dir, "masqd")
		if out, err := exec.Command("go", "build", "-o", masqdBin, "github.com/masqd/masqd/cmd/masqd").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build masqd: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// newBed builds a bed that is removed when the test ends, failed or not.
func newBed(t *testing.T) *testbed.Bed {
	t.Helper()
	if why := testbed.Skip(); why != "" {
		t.Skip("end-to-end test skipped: " + why)
	}
	b, err := testbed.New(context.Background())
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

// runMasqd runs masqd inside the node namespace, as a host-network
// DaemonSet runs it on a node, and returns its combined output.
func runMasqd(b *testbed.Bed, args ...string) (string, error) {
	out, err := b.Exec(context.Background(), b.NodeNS, masqdBin, append(args, "--log-format=console")...)
	return string(out), err
}

// masqd is runMasqd that fails the test when masqd exits non-zero.
func masqd(t *testing.T, b *testbed.Bed, args ...string) string {
	t.Helper()
	out, err := runMasqd(b, args...)
	if err != nil {
		t.Fatalf("masqd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeConfig writes body to a config file of its own and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ip-masq-agent")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ipMasqAgentDefaults are the ruleset options of masqd run without flags.
var ipMasqAgentDefaults = nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}

// missingConfig is a config path with no file: masqd's defaults apply.
func missingConfig(t *testing.T) string {
	return filepath.Join(t.TempDir(), "ip-masq-agent")
}

// expect says, per destination, whether the receiver must see the node's
// address (masqueraded) or the pod's.
type expect map[string]bool

// only expects every destination of the bed: those in masq masqueraded,
// all others not.
func only(t *testing.T, masq ...string) expect {
	t.Helper()
	e := expect{}
	for _, d := range testbed.Destinations {
		e[d.Addr.String()] = false
	}
	for _, m := range masq {
		if _, ok := e[m]; !ok {
			t.Fatalf("%s is not a destination of the bed", m)
		}
		e[m] = true
	}
	return e
}

// checkTraffic connects from the pod to each destination of want and
// checks the source the receiver saw.
func checkTraffic(t *testing.T, b *testbed.Bed, want expect) {
	t.Helper()
	for _, dst := range slices.Sorted(maps.Keys(want)) {
		a := netip.MustParseAddr(dst)
		got, err := b.SourceSeen(context.Background(), a)
		if err != nil {
			t.Errorf("%s: %v", dst, err)
			continue
		}
		node, pod := testbed.NodeIP4, testbed.PodIP4
		if a.Is6() {
			node, pod = testbed.NodeIP6, testbed.PodIP6
		}
		wantSrc := pod
		if want[dst] {
			wantSrc = node
		}
		if got.Addr() != wantSrc {
			t.Errorf("%s saw source %s, want %s (masqueraded: %v)", dst, got.Addr(), wantSrc, want[dst])
		}
	}
}

// checkExplain asks `masqd explain` about every destination of want and checks
// that it predicts what the connections showed.
func checkExplain(t *testing.T, cfg string, flags []string, want expect) {
	t.Helper()
	args := append([]string{"explain", "--config", cfg}, flags...)
	for dst := range want {
		args = append(args, dst)
	}
	out, err := exec.Command(masqdBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("masqd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		dst, verdict, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		seen[dst] = true
		masq := strings.HasPrefix(verdict, "masqueraded")
		if strings.HasPrefix(verdict, "not masqueraded") == masq {
			t.Errorf("explain: unreadable verdict %q", line)
		} else if wantMasq, ok := want[dst]; ok && masq != wantMasq {
			t.Errorf("explain says %s; the connection was masqueraded: %v", strings.TrimSpace(line), wantMasq)
		}
	}
	for dst := range want {
		if !seen[dst] {
			t.Errorf("explain said nothing about %s:\n%s", dst, out)
		}
	}
}

// TestConfigs runs `masqd --once` with each config in turn on one bed, so
// every case also checks that masqd converges from the previous one, and
// connects to every destination after each.
func TestConfigs(t *testing.T) {
	b := newBed(t)
	defaults := []string{"11.11.11.11", "203.0.113.10", "100.64.0.10", "198.51.100.10"}
	cases := []struct {
		name   string
		config string // "-" means no file
		flags  []string
		masq   []string // every other destination keeps the pod's address
	}{
		{"no file: defaults, IPv6 untouched", "-", nil, defaults},
		{"empty file: defaults", "", nil, defaults},
		{"custom list", "nonMasqueradeCIDRs: [10.96.0.0/12]\n", nil,
			[]string{"11.11.11.11", "203.0.113.10", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10"}},
		{"empty list: all but link-local", "nonMasqueradeCIDRs: []\n", nil,
			[]string{"11.11.11.11", "203.0.113.10", "10.96.0.10", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10"}},
		{"masqLinkLocal", "masqLinkLocal: true\n", nil, append([]string{"169.254.20.10"}, defaults...)},
		{"--nomasq-all-reserved-ranges", "-", []string{"--nomasq-all-reserved-ranges"}, []string{"11.11.11.11"}},
		// As in ip-masq-agent, the flag changes the defaults; a list replaces them.
		{"--nomasq-all-reserved-ranges with a list", "nonMasqueradeCIDRs: [10.0.0.0/8]\n", []string{"--nomasq-all-reserved-ranges"},
			[]string{"11.11.11.11", "203.0.113.10", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10"}},
		{"JSON", `{"nonMasqueradeCIDRs": ["172.16.0.0/12"], "masqLinkLocal": true}`, nil,
			[]string{"11.11.11.11", "203.0.113.10", "10.96.0.10", "192.168.5.10", "169.254.20.10", "100.64.0.10", "198.51.100.10"}},
		{"IPv6 on, with an IPv6 list", "nonMasqueradeCIDRs: [10.0.0.0/8, fd00:96::/32]\n", []string{"--enable-ipv6"},
			[]string{"11.11.11.11", "203.0.113.10", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10", "2001:db8:1::10"}},
		{"IPv6 on, defaults", "-", []string{"--enable-ipv6"}, append([]string{"2001:db8:1::10", "fd00:96::10"}, defaults...)},
		{"IPv6 off again", "-", nil, defaults},
		{"every key", "nonMasqueradeCIDRs: [10.96.0.0/12, fd00:96::/32]\nmasqLinkLocal: true\nmasqLinkLocalIPv6: true\nresyncInterval: 30s\ncidrLimit: 10\n",
			[]string{"--enable-ipv6"},
			[]string{"11.11.11.11", "203.0.113.10", "172.20.0.10", "192.168.5.10", "169.254.20.10", "100.64.0.10", "198.51.100.10", "2001:db8:1::10"}},
		{"--random-fully=false", "-", []string{"--random-fully=false"}, defaults},
		// What ip-masq-agent accepted and applied, applied the same way (with warnings).
		{"ip-masq-agent's sloppy spellings", "NonMasqueradeCIDRs: [172.16.0.0/12]\nmasqLinkLocal: yes\nresyncIntervl: 5s\n", nil,
			[]string{"11.11.11.11", "203.0.113.10", "10.96.0.10", "192.168.5.10", "169.254.20.10", "100.64.0.10", "198.51.100.10"}},
		{"a list with no value: everything but link-local", "nonMasqueradeCIDRs:\n", nil,
			[]string{"11.11.11.11", "203.0.113.10", "10.96.0.10", "172.20.0.10", "192.168.5.10", "100.64.0.10", "198.51.100.10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := missingConfig(t)
			if tc.config != "-" {
				cfg = writeConfig(t, tc.config)
			}
			masqd(t, b, append([]string{"--once", "--config", cfg}, tc.flags...)...)
			want := only(t, tc.masq...)
			checkTraffic(t, b, want)
			checkExplain(t, cfg, tc.flags, want)
		})
	}
}

// TestInvalidConfigKeepsRules: `masqd --once` with a bad config exits
// non-zero, names the file, line and field, and leaves the kernel alone.
func TestInvalidConfigKeepsRules(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	masqd(t, b, "--once", "--config", writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n"))
	before, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", "masqd")
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, before)
	}
	for _, tc := range []struct {
		name, config, wantMsg string
		args                  []string
	}{
		{"host bits", "nonMasqueradeCIDRs: [172.16.0.1/12]\n", "host bits", nil},
		{"IPv6 without --enable-ipv6", "nonMasqueradeCIDRs: [fd00:96::/32]\n", "--enable-ipv6", nil},
		// ip-masq-agent ignored unknown keys, and so does masqd but under --strict.
		{"unknown key under --strict", "nonMasqueradeCIRDs: [172.16.0.0/12]\n", `strict: unknown key "nonMasqueradeCIRDs"`, []string{"--strict"}},
		{"not YAML", "nonMasqueradeCIDRs: [172.16.0.0/12\n", "invalid YAML", nil},
	} {
		cfg := writeConfig(t, tc.config)
		out, err := runMasqd(b, append([]string{"--once", "--config", cfg}, tc.args...)...)
		if err == nil {
			t.Errorf("%s: masqd --once succeeded:\n%s", tc.name, out)
		}
		if !strings.Contains(out, cfg+":1") || !strings.Contains(out, tc.wantMsg) {
			t.Errorf("%s: the message should name %s, line 1, and say %q:\n%s", tc.name, cfg, tc.wantMsg, out)
		}
	}
	after, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", "masqd")
	if err != nil || string(after) != string(before) {
		t.Errorf("the table changed after invalid configs (%v):\nbefore:\n%s\nafter:\n%s", err, before, after)
	}
	checkTraffic(t, b, expect{"172.20.0.10": true, "10.96.0.10": false, "11.11.11.11": true})
}

// TestNamesAndCleanup: --table and --masq-chain name masqd's objects, and
// `masqd cleanup` removes exactly that table.
func TestNamesAndCleanup(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	names := []string{"--table", "egress", "--masq-chain", "IP-MASQ-AGENT"}
	masqd(t, b, append([]string{"--once", "--config", missingConfig(t)}, names...)...)
	out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "chain", "inet", "egress", "IP-MASQ-AGENT")
	if err != nil {
		t.Fatalf("nft list chain inet egress IP-MASQ-AGENT: %v\n%s", err, out)
	}
	checkTraffic(t, b, expect{"11.11.11.11": true, "10.96.0.10": false})

	masqd(t, b, "cleanup", "--table", "egress")
	if out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "tables"); err != nil || strings.Contains(string(out), "egress") {
		t.Errorf("after cleanup (%v):\n%s", err, out)
	}
	checkTraffic(t, b, expect{"11.11.11.11": false})
}

// TestLinkLocalIPv6 checks masqLinkLocalIPv6 in the kernel's ruleset only:
// no connection can test it, as a router never forwards a packet to a
// link-local destination (fe80::/10 is on-link by definition).
func TestLinkLocalIPv6(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	const rule = "ip6 daddr fe80::/10"
	for _, tc := range []struct {
		config   string
		wantRule bool
	}{
		{"masqLinkLocalIPv6: false\n", true},
		{"masqLinkLocalIPv6: true\n", false},
	} {
		masqd(t, b, "--once", "--enable-ipv6", "--config", writeConfig(t, tc.config))
		out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", "masqd")
		if err != nil {
			t.Fatalf("nft list table: %v\n%s", err, out)
		}
		if got := strings.Contains(string(out), rule); got != tc.wantRule {
			t.Errorf("%s: %q in the table: %v, want %v\n%s", strings.TrimSpace(tc.config), rule, got, tc.wantRule, out)
		}
	}
}

// TestToPortsRefused: google/nftables v0.3.0 cannot send the flag that
// makes the kernel honour a masquerade port range (the kernel ignored the
// range when masqd sent one), so masqd refuses --to-ports and changes
// nothing.
func TestToPortsRefused(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	out, err := runMasqd(b, "--once", "--config", missingConfig(t), "--to-ports=1024-29999,32768-65535")
	if err == nil || !strings.Contains(out, "--to-ports is not supported yet") {
		t.Fatalf("masqd --to-ports: %v\n%s", err, out)
	}
	if out, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "tables"); err != nil || strings.Contains(string(out), "masqd") {
		t.Errorf("a table after the refusal (%v):\n%s", err, out)
	}
}

// TestRenderAccepted checks that nft accepts what `masqd render` prints.
func TestRenderAccepted(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	for _, tc := range []struct {
		config string
		flags  []string
	}{
		{"", nil},
		{"", []string{"--enable-ipv6", "--nomasq-all-reserved-ranges"}},
		{"nonMasqueradeCIDRs: []\nmasqLinkLocal: true\n", []string{"--random-fully=false"}},
		{"nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, fd00::/8]\nmasqLinkLocalIPv6: true\n", []string{"--enable-ipv6", "--masq-chain", "IP-MASQ-AGENT"}},
	} {
		args := append([]string{"render", "--config", writeConfig(t, tc.config)}, tc.flags...)
		text, err := exec.Command(masqdBin, args...).Output()
		if err != nil {
			t.Fatalf("masqd %s: %v", strings.Join(args, " "), err)
		}
		cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(string(text))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nft -c rejects masqd %s: %v\n%s\n%s", strings.Join(args, " "), err, out, text)
		}
	}
}
