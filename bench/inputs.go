package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// cidrs returns n distinct /28 prefixes from 10.0.0.0/8 and then
// 11.0.0.0/8, spaced 32 addresses apart so that no two are adjacent: masqd
// cannot merge them and its set holds n intervals, as iptables holds n
// rules. 100,000 of them end below 10.49.0.0; up to 524,288 stay in
// 10.0.0.0/8.
func cidrs(n int) []string {
	if n > 1<<20 {
		panic("cidrs: more than 10.0.0.0/7 holds")
	}
	out := make([]string, n)
	for i := range out {
		a := uint32(10)<<24 + uint32(i)*32
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 28).String()
	}
	return out
}

// extraCIDR is added and removed by the change benchmarks; it lies above
// every prefix cidrs returns.
const extraCIDR = "10.250.0.0/28"

// format is a config file's syntax; masqd reads a file whose first
// non-space byte is "{" as JSON and everything else as YAML.
type format string

const (
	formatJSON format = "json"
	formatYAML format = "yaml"
)

// configText is an ip-masq-agent config holding list, with a cidrLimit
// that admits it (ip-masq-agent's default limit is 64).
func configText(f format, list []string, resync string) string {
	var b strings.Builder
	limit := len(list) + 16
	switch f {
	case formatJSON:
		b.WriteString(`{"nonMasqueradeCIDRs": [`)
		for i, c := range list {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(`"` + c + `"`)
		}
		fmt.Fprintf(&b, "], \"cidrLimit\": %d, \"resyncInterval\": %q}\n", limit, resync)
	case formatYAML:
		b.WriteString("nonMasqueradeCIDRs:\n")
		for _, c := range list {
			b.WriteString("  - " + c + "\n")
		}
		fmt.Fprintf(&b, "cidrLimit: %d\nresyncInterval: %s\n", limit, resync)
	}
	return b.String()
}

// ip-masq-agent's rule text, from kubernetes-sigs/ip-masq-agent
// cmd/ip-masq-agent/ip-masq-agent.go (syncMasqRules, writeNonMasqRule,
// writeMasqRule, ensurePostroutingJump), with its default flags:
// --masq-chain=IP-MASQ-AGENT, --random-fully=true, masqLinkLocal false.
const (
	iptChain       = "IP-MASQ-AGENT"
	iptNonMasqRule = `-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -d %s -j RETURN`
	iptMasqRule    = `-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE --random-fully`
	iptJumpRule    = `-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT`
	linkLocalCIDR  = "169.254.0.0/16"
)

// iptablesText is the iptables-restore input of one ip-masq-agent sync:
// the chain line (which flushes the chain within the restore), the
// link-local rule, one RETURN rule per CIDR and the MASQUERADE rule. With
// jump it also appends POSTROUTING's jump to the chain, which ip-masq-agent
// ensures with a separate iptables call before its first restore.
func iptablesText(list []string, jump bool) string {
	var b strings.Builder
	b.WriteString("*nat\n:" + iptChain + " - [0:0]\n")
	if jump {
		b.WriteString(iptJumpRule + "\n")
	}
	fmt.Fprintf(&b, iptNonMasqRule+"\n", linkLocalCIDR)
	for _, c := range list {
		fmt.Fprintf(&b, iptNonMasqRule+"\n", c)
	}
	b.WriteString(iptMasqRule + "\nCOMMIT\n")
	return b.String()
}

// tableRewriteText replaces masqd's table whole in one nft transaction,
// the way a tool that re-loads its ruleset every cycle would: it creates
// the table if missing, deletes it, and loads ruleset (masqd render's text).
func tableRewriteText(table, ruleset string) string {
	return "table inet " + table + " {}\ndelete table inet " + table + "\n" + ruleset
}

// setRewriteText flushes masqd's IPv4 set and adds list back, in one nft
// transaction: a whole-set rewrite.
func setRewriteText(table string, list []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flush set inet %s nomasq-v4\n", table)
	if len(list) > 0 {
		fmt.Fprintf(&b, "add element inet %s nomasq-v4 { %s }\n", table, strings.Join(list, ", "))
	}
	return b.String()
}

// writeFile writes text to dir/name and returns the path.
func writeFile(dir, name, text string) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}
