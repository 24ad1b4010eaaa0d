package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestCIDRsAreDistinctAndNeverAdjacent(t *testing.T) {
	list := cidrs(100000)
	if len(list) != 100000 {
		t.Fatalf("got %d CIDRs, want 100000", len(list))
	}
	extra := netip.MustParsePrefix(extraCIDR)
	limit := netip.MustParseAddr("10.49.0.0")
	var prevEnd netip.Addr
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Masked() != p || p.Bits() != 28 {
			t.Fatalf("cidrs[%d] = %q: not a masked /28 (%v)", i, s, err)
		}
		if !netip.MustParsePrefix("10.0.0.0/8").Contains(p.Addr()) || !p.Addr().Less(limit) {
			t.Fatalf("cidrs[%d] = %s: outside 10.0.0.0–10.49.0.0", i, p)
		}
		if p.Overlaps(extra) {
			t.Fatalf("cidrs[%d] = %s overlaps the change CIDR %s", i, p, extra)
		}
		if i > 0 && !prevEnd.Next().Less(p.Addr()) {
			t.Fatalf("cidrs[%d] = %s touches the previous prefix (ends at %s): masqd would merge them", i, p, prevEnd)
		}
		prevEnd = lastAddr(p)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func TestConfigTextJSON(t *testing.T) {
	list := cidrs(3)
	var got struct {
		NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs"`
		CIDRLimit          int      `json:"cidrLimit"`
		ResyncInterval     string   `json:"resyncInterval"`
	}
	text := configText(formatJSON, list, "200ms")
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, text)
	}
	if strings.Join(got.NonMasqueradeCIDRs, ",") != strings.Join(list, ",") || got.CIDRLimit < len(list) || got.ResyncInterval != "200ms" {
		t.Errorf("JSON config = %+v, want the list %v, a limit admitting it and 200ms", got, list)
	}
}

func TestConfigTextYAML(t *testing.T) {
	want := "nonMasqueradeCIDRs:\n  - 10.0.0.0/28\n  - 10.0.0.32/28\ncidrLimit: 18\nresyncInterval: 60s\n"
	if got := configText(formatYAML, cidrs(2), "60s"); got != want {
		t.Errorf("YAML config =\n%s\nwant\n%s", got, want)
	}
	if got := configText(formatYAML, nil, "60s"); strings.HasPrefix(strings.TrimSpace(got), "{") {
		t.Errorf("YAML config starts like JSON, masqd would parse it as JSON: %q", got)
	}
}

func TestIptablesText(t *testing.T) {
	tests := []struct {
		name string
		jump bool
		want string
	}{
		{"a resync cycle", false, `*nat
:IP-MASQ-AGENT - [0:0]
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -d 169.254.0.0/16 -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -d 10.0.0.0/28 -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE --random-fully
COMMIT
`},
		{"the first apply adds the jump", true, `*nat
:IP-MASQ-AGENT - [0:0]
-A POSTROUTING -m comment --comment "ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain" -m addrtype ! --dst-type LOCAL -j IP-MASQ-AGENT
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -d 169.254.0.0/16 -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: local traffic is not subject to MASQUERADE" -d 10.0.0.0/28 -j RETURN
-A IP-MASQ-AGENT -m comment --comment "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)" -j MASQUERADE --random-fully
COMMIT
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := iptablesText(cidrs(1), tt.jump); got != tt.want {
				t.Errorf("iptablesText =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRewriteTexts(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"whole table", tableRewriteText("masqd", "table inet masqd {\n}\n"),
			"table inet masqd {}\ndelete table inet masqd\ntable inet masqd {\n}\n"},
		{"whole set", setRewriteText("masqd", cidrs(2)),
			"flush set inet masqd nomasq-v4\nadd element inet masqd nomasq-v4 { 10.0.0.0/28, 10.0.0.32/28 }\n"},
		{"empty set", setRewriteText("masqd", nil), "flush set inet masqd nomasq-v4\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", tt.got, tt.want)
			}
		})
	}
}
