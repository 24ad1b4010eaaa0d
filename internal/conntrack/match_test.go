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

func TestTranslationsText(t *testing.T) {
	if got := TranslationsText(nil); got != "no matching translations in conntrack\n" {
		t.Errorf("none: %q", got)
	}
	ts := []Translation{{Proto: "udp", Pod: netip.MustParseAddrPort("10.244.1.2:40000"),
		Node: netip.MustParseAddrPort("192.0.2.1:31234"), Dst: netip.MustParseAddrPort("203.0.113.7:53")}}
	want := "PROTO   POD                                           NODE (TRANSLATED)                             DESTINATION\n" +
		"udp     10.244.1.2:40000                              192.0.2.1:31234                               203.0.113.7:53\n"
	if got := TranslationsText(ts); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
