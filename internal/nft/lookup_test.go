package nft

import (
	"net/netip"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// packetCases are verdicts the tracer must give; test/e2e sends the same
// kinds of packets through the kernel.
func TestTrace(t *testing.T) {
	v6 := withOpts(func(o *Options) { o.EnableIPv6 = true })
	cases := []struct {
		name     string
		cfg      config.Config
		opts     Options
		pkt      Packet
		masq     bool
		decision string
	}{
		{"internet", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("203.0.113.7")}, true, "masqd: outbound traffic is masqueraded"},
		{"cluster peer", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("10.96.0.10")}, false, "masqd: nonMasqueradeCIDRs are not masqueraded"},
		{"local", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("203.0.113.7"), Local: true}, false, "masqd: local destinations are not masqueraded"},
		{"link-local", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("169.254.169.254")}, false, "masqd: link-local is not masqueraded (masqLinkLocal: false)"},
		{"link-local masqueraded", config.Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("169.254.169.254")}, true, "masqd: outbound traffic is masqueraded"},
		{"empty list", config.Config{}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("10.96.0.10")}, true, "masqd: outbound traffic is masqueraded"},
		{"ipv6 disabled", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("2001:db8::1")}, false, "masqd: IPv6 is not masqueraded (--enable-ipv6=false)"},
		{"ipv6 internet", config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, v6,
			Packet{Dst: netip.MustParseAddr("2001:db8::1")}, true, "masqd: outbound traffic is masqueraded"},
		{"ipv6 peer", config.Config{NonMasqueradeCIDRs: prefixes("fd00::/8")}, v6,
			Packet{Dst: netip.MustParseAddr("fd00:96::10")}, false, "masqd: nonMasqueradeCIDRs are not masqueraded"},
		{"ipv6 link-local", config.Config{}, v6,
			Packet{Dst: netip.MustParseAddr("fe80::1")}, false, "masqd: link-local is not masqueraded (masqLinkLocalIPv6: false)"},
		{"ipv6 link-local masqueraded", config.Config{MasqLinkLocalIPv6: true}, v6,
			Packet{Dst: netip.MustParseAddr("fe80::1")}, true, "masqd: outbound traffic is masqueraded"},
		{"v4 in v6 set ignored", config.Config{NonMasqueradeCIDRs: prefixes("::/0")}, v6,
			Packet{Dst: netip.MustParseAddr("203.0.113.7")}, true, "masqd: outbound traffic is masqueraded"},
		{"v4-mapped dst is v4", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults(),
			Packet{Dst: netip.MustParseAddr("::ffff:10.1.2.3")}, false, "masqd: nonMasqueradeCIDRs are not masqueraded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Build(&tc.cfg, tc.opts).Trace(tc.pkt)
			if v.Masquerade != tc.masq || v.Comment != tc.decision {
				t.Errorf("Trace(%+v) = masquerade %v by %q, want %v by %q", tc.pkt, v.Masquerade, v.Comment, tc.masq, tc.decision)
			}
		})
	}
}

func TestLookupInterval(t *testing.T) {
	rs := Build(&config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "11.0.0.0/8")}, ipMasqAgentDefaults())
	v := rs.lookup(netip.MustParseAddr("11.2.3.4"))
	if got := v.Interval.String(); got != "10.0.0.0/7" {
		t.Errorf("deciding interval %s, want 10.0.0.0/7", got)
	}
}
