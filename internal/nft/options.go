package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrToPortsRefused explains why --to-ports, which ip-masq-agent had and
// masqd accepts as a flag, is refused whatever its value.
var ErrToPortsRefused = errors.New("--to-ports is not supported yet: google/nftables v0.3.0, the newest " +
	"release, drops the masquerade flags whenever it encodes a port range, so the kernel would not " +
	"restrict source ports to the range (an end-to-end test saw ports outside it); remove the flag " +
	"(masqd then masquerades with the kernel's port choice, fully random with --random-fully)")

// ParseSNAT parses Options.SNATv4 (v4) or SNATv6 from the flag named flag
// (--snat-address or --snat-address-ipv6): empty, or one unicast address
// of the flag's family.
func ParseSNAT(flag, s string, v4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	family, other := "IPv4", "--snat-address-ipv6"
	if !v4 {
		family, other = "IPv6", "--snat-address"
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("%s: %q is not an IP address; give this node's egress %s address, e.g. from the downward API", flag, s, family)
	case a.Unmap().Is4() != v4:
		return netip.Addr{}, fmt.Errorf("%s: %s is not an %s address; use %s for it", flag, a, family, other)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || (a.Unmap().Is4() && a.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return netip.Addr{}, fmt.Errorf("%s: %s cannot be a source address; give this node's egress %s address", flag, a, family)
	}
	return a.Unmap(), nil
}
