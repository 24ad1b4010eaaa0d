package nft

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

const ipMasqAgentRules = `*nat
:IP-MASQ-AGENT - [0:0]
-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A POSTROUTING -m comment --comment "kube-proxy: keep me" -j ACCEPT
-A IP-MASQ-AGENT -d 169.254.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -d 10.0.0.0/8 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE --random-fully
COMMIT
`

func TestLegacy(t *testing.T) {
	ns, c := netns(t)
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		t.Skip("iptables-nft-restore not installed")
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "iptables-nft-restore", "--noflush")
	cmd.Stdin = strings.NewReader(ipMasqAgentRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
	ctx := context.Background()
	found, err := c.FindLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Chain != "IP-MASQ-AGENT" || found[0].Rules != 3 || len(found[0].Jumps) != 1 {
		t.Fatalf("FindLegacy = %+v, want the IP-MASQ-AGENT chain with 3 rules and 1 jump", found)
	}
	if err := c.CleanupLegacy(ctx, found); err != nil {
		t.Fatal(err)
	}
	if again, err := c.FindLegacy(ctx); err != nil || len(again) != 0 {
		t.Fatalf("after cleanup FindLegacy = %+v, %v; want none", again, err)
	}
	got := nftIn(t, ns, "", "list", "table", "ip", "nat")
	if !strings.Contains(got, "accept") || strings.Contains(got, "IP-MASQ-AGENT") {
		t.Errorf("cleanup removed too much or too little:\n%s", got)
	}
}

func TestLegacyText(t *testing.T) {
	l := Legacy{Family: IPv4, Table: "nat", Chain: "IP-MASQ-AGENT", Rules: 1, Jumps: []uint64{7}}
	if got, want := l.String(), "ip nat chain IP-MASQ-AGENT (1 rule, 1 jump from POSTROUTING)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	l.Family, l.Rules, l.Jumps = IPv6, 3, []uint64{7, 9}
	if got, want := l.String(), "ip6 nat chain IP-MASQ-AGENT (3 rules, 2 jumps from POSTROUTING)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	want := `ip6tables-nft -t nat -S POSTROUTING | grep -e ' -j IP-MASQ-AGENT$' | sed 's/^-A /-D /' | xargs -r -L1 ip6tables-nft -t nat && ` +
		`ip6tables-nft -t nat -F IP-MASQ-AGENT && ip6tables-nft -t nat -X IP-MASQ-AGENT`
	if got := l.IptablesCommand(); got != want {
		t.Errorf("IptablesCommand() =\n%s\nwant\n%s", got, want)
	}
}

// TestKernelLegacyCommand pastes IptablesCommand into a shell in the
// namespace: ip-masq-agent's chain and jump go, kube-proxy's rule stays.
func TestKernelLegacyCommand(t *testing.T) {
	ns, c := netns(t)
	for _, bin := range []string{"iptables-nft-restore", "iptables-nft", "xargs", "sed", "grep"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "iptables-nft-restore", "--noflush")
	cmd.Stdin = strings.NewReader(ipMasqAgentRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
	found, err := c.FindLegacy(context.Background())
	if err != nil || len(found) != 1 {
		t.Fatalf("FindLegacy = %+v, %v; want one leftover", found, err)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", found[0].IptablesCommand()).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", found[0].IptablesCommand(), err, out)
	}
	if again, err := c.FindLegacy(context.Background()); err != nil || len(again) != 0 {
		t.Errorf("after the command FindLegacy = %+v, %v; want none", again, err)
	}
	got := nftIn(t, ns, "", "list", "table", "ip", "nat")
	if !strings.Contains(got, "accept") || strings.Contains(got, "IP-MASQ-AGENT") {
		t.Errorf("the command removed too much or too little:\n%s", got)
	}
}
