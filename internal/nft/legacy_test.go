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
