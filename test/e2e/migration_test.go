package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// ipMasqAgentRules is what ip-masq-agent writes with iptables-nft, plus an
// unrelated POSTROUTING rule that must survive the cleanup.
const ipMasqAgentRules = `*nat
:IP-MASQ-AGENT - [0:0]
-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A POSTROUTING -d 198.51.100.99/32 -m comment --comment "someone else's rule" -j ACCEPT
-A IP-MASQ-AGENT -d 169.254.0.0/16 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -d 10.0.0.0/8 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -d 172.16.0.0/12 -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE --random-fully
COMMIT
`

// TestMigration replaces ip-masq-agent on a node: its iptables-nft rules
// are there first (and, at srcnat priority, decide before masqd's chain);
// masqd warns about them, `masqd cleanup --legacy` removes exactly them, and
// traffic then follows masqd's config.
func TestMigration(t *testing.T) {
	b := newBed(t)
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		t.Skip("end-to-end test skipped: iptables-nft-restore not installed (apt-get install -y iptables)")
	}
	cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "iptables-nft-restore", "--noflush")
	cmd.Stdin = strings.NewReader(ipMasqAgentRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
	// masqd's config exempts 192.168.0.0/16, ip-masq-agent's does not.
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.0/16]\n")
	out := masqd(t, b, "--once", "--config", cfg)
	if !strings.Contains(out, "ip-masq-agent's rules are still installed") || !strings.Contains(out, "masqd cleanup --legacy") {
		t.Errorf("no warning about ip-masq-agent's leftovers:\n%s", out)
	}
	// ip-masq-agent's chain runs first (priority srcnat) and its MASQUERADE
	// wins: the leftovers still decide for what masqd would exempt.
	checkTraffic(t, b, expect{"192.168.5.10": true})

	out = masqd(t, b, "cleanup", "--legacy")
	if !strings.Contains(out, "removed ip nat chain IP-MASQ-AGENT (4 rules, 1 jump from POSTROUTING)") {
		t.Errorf("cleanup output:\n%s", out)
	}
	nat, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "ip", "nat")
	if err != nil {
		t.Fatalf("nft list table ip nat: %v\n%s", err, nat)
	}
	if strings.Contains(string(nat), "IP-MASQ-AGENT") || !strings.Contains(string(nat), "198.51.100.99") {
		t.Errorf("cleanup removed the wrong rules:\n%s", nat)
	}
	if masqdTable, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", "masqd"); err != nil {
		t.Errorf("masqd's own table is gone: %v\n%s", err, masqdTable)
	}
	checkTraffic(t, b, expect{"192.168.5.10": false, "172.20.0.10": true, "10.96.0.10": false, "11.11.11.11": true})
	if out := masqd(t, b, "--once", "--config", cfg); strings.Contains(out, "still installed") {
		t.Errorf("warning after cleanup:\n%s", out)
	}
}
