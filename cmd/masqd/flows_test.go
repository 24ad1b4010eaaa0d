package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/conntrack"
)

func TestFlowMatch(t *testing.T) {
	cases := []struct {
		port, pod, dst string
		want           conntrack.Match
		err            string
	}{
		{"", "", "", conntrack.Match{}, ""},
		{"31234", "10.244.1.2", "203.0.113.0/24", conntrack.Match{Port: 31234, Pod: netip.MustParseAddr("10.244.1.2"), Dst: netip.MustParsePrefix("203.0.113.0/24")}, ""},
		{"", "", "2001:db8::1", conntrack.Match{Dst: netip.MustParsePrefix("2001:db8::1/128")}, ""},
		{"", "", "203.0.113.7/24", conntrack.Match{Dst: netip.MustParsePrefix("203.0.113.0/24")}, ""},
		{"0", "", "", conntrack.Match{}, "--port"},
		{"70000", "", "", conntrack.Match{}, "--port"},
		{"", "pod-a", "", conntrack.Match{}, "--pod"},
		{"", "", "example.com", conntrack.Match{}, "--destination"},
	}
	for _, tc := range cases {
		s := settings{flowPort: tc.port, flowPod: tc.pod, flowDst: tc.dst}
		got, err := s.flowMatch()
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want one about %s", tc, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %+v, %v; want %+v", tc, got, err, tc.want)
		}
	}
}
