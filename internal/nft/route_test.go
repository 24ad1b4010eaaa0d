package nft

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
)

// TestLocalRoutes: in a throw-away namespace, LocalRoutes lists the
// kernel's local routes (a whole prefix added with `ip route add local`
// included) and NodeAddrs the interfaces' addresses.
func TestLocalRoutes(t *testing.T) {
	ns := netnstest.New(t, "masqd-routetest")
	netnstest.IP(t, ns,
		"link set lo up",
		"link add v0 type veth peer name v1",
		"link set v0 up",
		"link set v1 up",
		"addr add 192.0.2.1/24 dev v0",
		"addr add 2001:db8::1/64 dev v0 nodad",
		"route add local 198.51.100.0/24 dev lo")
	netnstest.WaitLocalRoute(t, ns, "2001:db8::1")
	routes, err := LocalRoutes(netnstest.Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.0/8", "127.0.0.1/32", "192.0.2.1/32", "198.51.100.0/24", "::1/128", "2001:db8::1/128"} {
		if !slices.Contains(routes, netip.MustParsePrefix(want)) {
			t.Errorf("LocalRoutes has no %s: %v", want, routes)
		}
	}
	// Broadcast and multicast routes share the local table; they are not local.
	for _, bad := range []string{"192.0.2.255/32", "ff00::/8"} {
		if slices.Contains(routes, netip.MustParsePrefix(bad)) {
			t.Errorf("LocalRoutes lists %s, which is not a local route: %v", bad, routes)
		}
	}
	addrs, err := NodeAddrs(netnstest.Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1", "192.0.2.1", "::1", "2001:db8::1"} {
		if !addrs[netip.MustParseAddr(want)] {
			t.Errorf("NodeAddrs has no %s: %v", want, addrs)
		}
	}
	if addrs[netip.MustParseAddr("198.51.100.1")] {
		t.Errorf("NodeAddrs lists 198.51.100.1, a local route but no interface's address")
	}
}
