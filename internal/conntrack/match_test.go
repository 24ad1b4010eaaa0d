package conntrack

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseMatch(t *testing.T) {
	cases := []struct {
		port, pod, dst string
		want           Match
		err            string
	}{
		{"", "", "", Match{}, ""},
		{"31234", "10.244.1.2", "203.0.113.0/24", Match{Port: 31234, Pod: netip.MustParseAddr("10.244.1.2"), Dst: netip.MustParsePrefix("203.0.113.0/24")}, ""},
		{"", "", "2001:db8::1", Match{Dst: netip.MustParsePrefix("2001:db8::1/128")}, ""},
		{"", "", "203.0.113.7/24", Match{Dst: netip.MustParsePrefix("203.0.113.0/24")}, ""},
		{"0", "", "", Match{}, "--port"},
		{"70000", "", "", Match{}, "--port"},
		{"", "pod-a", "", Match{}, "--pod"},
		{"", "", "example.com", Match{}, "--destination"},
	}
	for _, tc := range cases {
		got, err := ParseMatch(tc.port, tc.pod, tc.dst)
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
