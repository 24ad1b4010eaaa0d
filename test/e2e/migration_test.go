package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
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

// installIPMasqAgent writes ip-masq-agent's rules into the node with
// iptables-nft, as ip-masq-agent does.
func installIPMasqAgent(t *testing.T, b *testbed.Bed) {
	t.Helper()
	if _, err := exec.LookPath("iptables-nft-restore"); err != nil {
		t.Skip("end-to-end test skipped: iptables-nft-restore not installed (apt-get install -y iptables)")
	}
	cmd := exec.Command("ip", "netns", "exec", b.NodeNS, "iptables-nft-restore", "--noflush")
	cmd.Stdin = strings.NewReader(ipMasqAgentRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore: %v\n%s", err, out)
	}
}

// natTable is the node's `ip nat` table, as nft lists it.
func natTable(t *testing.T, b *testbed.Bed) string {
	t.Helper()
	nat, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "ip", "nat")
	if err != nil {
		t.Fatalf("nft list table ip nat: %v\n%s", err, nat)
	}
	return string(nat)
}

// legacyChain is what masqd calls the chain installIPMasqAgent installs.
const legacyChain = "ip nat chain IP-MASQ-AGENT (4 rules, 1 jump from POSTROUTING)"

// legacyWarning is the message of masqd's warning that ip-masq-agent's
// rules are still installed.
const legacyWarning = "ip-masq-agent's rules are still installed and run before masqd's; remove them with masqd cleanup --legacy, or run masqd with --remove-legacy-rules"

// TestMigration replaces ip-masq-agent on a node: its iptables-nft rules
// are there first (and, at srcnat priority, decide before masqd's chain);
// masqd warns about them, `masqd cleanup --legacy` removes exactly them, and
// traffic then follows masqd's config.
func TestMigration(t *testing.T) {
	b := newBed(t)
	installIPMasqAgent(t, b)
	// Before masqd's table is there, removing ip-masq-agent's rules would
	// leave the node without masquerading: cleanup refuses.
	if out, err := runMasqd(b, "cleanup", "--legacy"); err == nil || !strings.Contains(out, "refusing to remove ip-masq-agent's rules") ||
		!strings.Contains(natTable(t, b), "IP-MASQ-AGENT") {
		t.Errorf("cleanup --legacy without masqd's table: %v, chain kept %v:\n%s", err, strings.Contains(natTable(t, b), "IP-MASQ-AGENT"), out)
	}
	checkTraffic(t, b, expect{"11.11.11.11": true})
	// masqd's config exempts 192.168.0.0/16, ip-masq-agent's does not.
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.0/16]\n")
	lines, out := masqdLog(t, b, "--once", "--config", cfg)
	if len(findLog(lines, legacyWarning, "level", "warn", "leftover", legacyChain)) != 1 {
		t.Errorf("no warning about ip-masq-agent's leftovers:\n%s", out)
	}
	// ip-masq-agent's chain runs first (priority srcnat) and its MASQUERADE
	// wins: the leftovers still decide for what masqd would exempt.
	checkTraffic(t, b, expect{"192.168.5.10": true})

	out = masqd(t, b, "cleanup", "--legacy")
	if !strings.Contains(out, "removed "+legacyChain) {
		t.Errorf("cleanup output:\n%s", out)
	}
	if nat := natTable(t, b); strings.Contains(nat, "IP-MASQ-AGENT") || !strings.Contains(nat, "198.51.100.99") {
		t.Errorf("cleanup removed the wrong rules:\n%s", nat)
	}
	if masqdTable, err := b.Exec(context.Background(), b.NodeNS, "nft", "list", "table", "inet", "masqd"); err != nil {
		t.Errorf("masqd's own table is gone: %v\n%s", err, masqdTable)
	}
	checkTraffic(t, b, expect{"192.168.5.10": false, "172.20.0.10": true, "10.96.0.10": false, "11.11.11.11": true})
	if lines, out := masqdLog(t, b, "--once", "--config", cfg); len(findLog(lines, legacyWarning)) != 0 {
		t.Errorf("warning after cleanup:\n%s", out)
	}
}

// TestMigrationOneRollout replaces ip-masq-agent in one step: the agent
// with --remove-legacy-rules starts on a node where ip-masq-agent's rules
// are installed. While masqd is not ready (its config is invalid) they stay
// and keep masquerading; the pass that syncs masqd's table removes them and
// nothing else, and traffic then follows masqd's config.
func TestMigrationOneRollout(t *testing.T) {
	b := newBed(t)
	installIPMasqAgent(t, b)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.1/16]\n")
	p, url := startAgent(t, b, cfg, "--remove-legacy-rules")
	// The start pass counts the chain after failing to read the config.
	eventually(t, 10*time.Second, "the legacy chain counted", metricIs(p, "masqd_legacy_ip_masq_agent_chains", 1))
	if err := statusIs(url+"/readyz", 503)(); err != nil {
		t.Fatal(err)
	}
	if n, err := metric(p, "masqd_legacy_rules_removed_total"); err != nil || n != 0 || !strings.Contains(natTable(t, b), "IP-MASQ-AGENT") {
		t.Fatalf("ip-masq-agent's rules removed while masqd is not ready (removed_total %v, %v):\n%s", n, err, natTable(t, b))
	}
	checkTraffic(t, b, expect{"192.168.5.10": true, "10.96.0.10": false})

	replaceFile(t, cfg, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.0/16]\n")
	eventually(t, 10*time.Second, "removal after the fix", metricIs(p, "masqd_legacy_rules_removed_total", 1))
	if nat := natTable(t, b); strings.Contains(nat, "IP-MASQ-AGENT") || !strings.Contains(nat, "198.51.100.99") {
		t.Errorf("--remove-legacy-rules removed the wrong rules:\n%s", nat)
	}
	for _, check := range []func() error{
		statusIs(url+"/readyz", 200),
		metricIs(p, "masqd_legacy_ip_masq_agent_chains", 0),
		func() error {
			const msg = "removed ip-masq-agent's rules now that masqd's table is in sync (--remove-legacy-rules)"
			if n := len(findLog(agentLog(t, p), msg, "level", "info", "removed", legacyChain)); n != 1 {
				return fmt.Errorf("%d log lines %q with removed=%q, want 1", n, msg, legacyChain)
			}
			return nil
		},
	} {
		if err := check(); err != nil {
			t.Error(err)
		}
	}
	checkTraffic(t, b, expect{"192.168.5.10": false, "172.20.0.10": true, "10.96.0.10": false, "11.11.11.11": true})
}
