package nft

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/config"
)

// Family is the address family a rule applies to.
type Family uint8

// Families. Any matches both.
const (
	Any Family = iota
	IPv4
	IPv6
)

// families are the address families in the order their sets and rules
// appear in the table.
var families = [...]Family{IPv4, IPv6}

// famInfo is everything that differs between IPv4 and IPv6 in masqd's table.
// Building, encoding, rendering, tracing and reading the table back take
// these parameters instead of branching on the family, in the style of
// kube-proxy's ipX and ipvX_addr.
type famInfo struct {
	// name is the family as nft's meta nfproto and the metrics spell it.
	name string
	// label is the family as comments and messages spell it.
	label string
	// suffix ends the names of the family's rules: "" for IPv4, the first
	// family ip-masq-agent had, "-ipv6" for IPv6.
	suffix string

	// nfproto is the meta nfproto value of the family.
	nfproto byte
	// table is the single-family table family (ip, ip6) where iptables-nft
	// keeps ip-masq-agent's chains, and iptables the tool that writes them.
	table    nftables.TableFamily
	iptables string
	// payload is nft's keyword for the network header (ip daddr, ip6 daddr).
	payload string
	// key is the set key type, as nft names it and the library encodes it.
	key nftables.SetDatatype
	// addrLen is the address length in bytes; saddr and daddr are the
	// offsets of the source and destination addresses in the header.
	addrLen      int
	saddr, daddr uint32
	// zero and max are the lowest and the highest address.
	zero, max netip.Addr

	// linkLocal is the family's link-local prefix, exempt from masquerading
	// unless the config key linkLocalKey (masqLinkLocal) is true.
	linkLocal     netip.Prefix
	linkLocalKey  string
	masqLinkLocal func(*config.Config) bool
	// nomasqSet holds the family's non-masquerade destinations, srcSet its
	// masqueradeSourceCIDRs.
	nomasqSet, srcSet string
	// enabled reports whether opts masquerade the family at all, and
	// enableFlag is the flag that does it ("" when always).
	enabled    func(Options) bool
	enableFlag string
	// snat is the address opts translate the family to, set by snatFlag.
	snat     func(Options) netip.Addr
	snatFlag string
}

var famInfos = [...]famInfo{
	Any: {name: "any"},
	IPv4: {
		name:          "ipv4",
		label:         "IPv4",
		suffix:        "",
		nfproto:       unix.NFPROTO_IPV4,
		table:         nftables.TableFamilyIPv4,
		iptables:      "iptables",
		payload:       "ip",
		key:           nftables.TypeIPAddr,
		addrLen:       4,
		saddr:         12,
		daddr:         16,
		zero:          netip.MustParseAddr("0.0.0.0"),
		max:           netip.MustParseAddr("255.255.255.255"),
		linkLocal:     netip.MustParsePrefix("169.254.0.0/16"),
		linkLocalKey:  "masqLinkLocal",
		masqLinkLocal: func(c *config.Config) bool { return c.MasqLinkLocal },
		nomasqSet:     SetV4,
		srcSet:        SetSrcV4,
		enabled:       func(Options) bool { return true },
		snat:          func(o Options) netip.Addr { return o.SNATv4 },
		snatFlag:      "--snat-address",
	},
	IPv6: {
		name:          "ipv6",
		label:         "IPv6",
		suffix:        "-ipv6",
		nfproto:       unix.NFPROTO_IPV6,
		table:         nftables.TableFamilyIPv6,
		iptables:      "ip6tables",
		payload:       "ip6",
		key:           nftables.TypeIP6Addr,
		addrLen:       16,
		saddr:         8,
		daddr:         24,
		zero:          netip.MustParseAddr("::"),
		max:           netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
		linkLocal:     netip.MustParsePrefix("fe80::/10"),
		linkLocalKey:  "masqLinkLocalIPv6",
		masqLinkLocal: func(c *config.Config) bool { return c.MasqLinkLocalIPv6 },
		nomasqSet:     SetV6,
		srcSet:        SetSrcV6,
		enabled:       func(o Options) bool { return o.EnableIPv6 },
		enableFlag:    "--enable-ipv6",
		snat:          func(o Options) netip.Addr { return o.SNATv6 },
		snatFlag:      "--snat-address-ipv6",
	},
}

// info returns the family's parameters. Any has a name only.
func (f Family) info() *famInfo { return &famInfos[f] }

func (f Family) String() string { return f.info().name }

// addrFamily is the family of a (an IPv4-mapped IPv6 address is IPv6).
func addrFamily(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// all is the interval of every address of the family.
func (fi *famInfo) all() Interval { return Interval{First: fi.zero, Last: fi.max} }

// byFamily splits prefixes by family. The lists are sized up front:
// growing them by append left five times the list behind as garbage
// (17 MB at 100,000 CIDRs).
func byFamily(ps []netip.Prefix) [len(famInfos)][]netip.Prefix {
	var n [len(famInfos)]int
	for _, p := range ps {
		n[addrFamily(p.Addr())]++
	}
	var out [len(famInfos)][]netip.Prefix
	for f := range out {
		if n[f] > 0 {
			out[f] = make([]netip.Prefix, 0, n[f])
		}
	}
	for _, p := range ps {
		f := addrFamily(p.Addr())
		out[f] = append(out[f], p)
	}
	return out
}

// loadSaddr and loadDaddr load a packet's source or destination address
// into register 1.
func (fi *famInfo) loadSaddr() *expr.Payload { return fi.load(fi.saddr) }
func (fi *famInfo) loadDaddr() *expr.Payload { return fi.load(fi.daddr) }

func (fi *famInfo) load(offset uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(fi.addrLen)}
}
