package agent

import (
	"errors"
	"net/netip"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/masqd/masqd/internal/nft"
)

func TestWarnForeignSNAT(t *testing.T) {
	own := netip.MustParseAddr("192.0.2.1")
	foreign := netip.MustParseAddr("198.51.100.7")
	addrs := func() (map[netip.Addr]bool, error) { return map[netip.Addr]bool{own: true}, nil }
	for _, tc := range []struct {
		name  string
		opts  nft.Options
		addrs func() (map[netip.Addr]bool, error)
		want  []string
	}{
		{"no --snat-address", nft.Options{}, nil, nil},
		{"the node's", nft.Options{SNATv4: own}, addrs, nil},
		{"foreign", nft.Options{SNATv4: foreign}, addrs,
			[]string{"--snat-address is not an address of this node: replies to it come back only if something else routes it here"}},
		{"addresses unknown", nft.Options{SNATv4: own}, func() (map[netip.Addr]bool, error) { return nil, errors.New("no netlink") },
			[]string{"cannot list the node's addresses to check --snat-address"}},
	} {
		core, logs := observer.New(zap.WarnLevel)
		WarnForeignSNAT(zap.New(core), tc.opts, tc.addrs)
		var got []string
		for _, e := range logs.All() {
			got = append(got, e.Message)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("%s: logged %q, want %q", tc.name, got, tc.want)
		}
	}
}
