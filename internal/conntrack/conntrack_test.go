package conntrack

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMode(t *testing.T) {
	for _, s := range []string{"off", "udp", "all"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("UDP"); err == nil {
		t.Error("ParseMode(UDP) accepted a name in another case")
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		proto         uint8
		off, udp, all bool
	}{
		{unix.IPPROTO_UDP, false, true, true},
		{unix.IPPROTO_ICMP, false, true, true},
		{unix.IPPROTO_ICMPV6, false, true, true},
		{unix.IPPROTO_UDPLITE, false, true, true},
		{unix.IPPROTO_GRE, false, true, true},
		{unix.IPPROTO_TCP, false, false, true},
		{unix.IPPROTO_SCTP, false, false, true},
		{unix.IPPROTO_DCCP, false, false, true},
	}
	for _, tc := range cases {
		for m, want := range map[Mode]bool{Off: tc.off, UDP: tc.udp, All: tc.all} {
			if got := m.Covers(tc.proto); got != want {
				t.Errorf("%s.Covers(%s) = %v, want %v", m, ProtoName(tc.proto), got, want)
			}
		}
	}
}
