package nft

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/masqd/masqd/internal/config"
)

// Defaults for Options.
const (
	DefaultTable = "masqd"
	DefaultChain = "postrouting"
	// ChainPriority is srcnat + 10: masqd's chain runs after kube-proxy's
	// and the CNI's SNAT chains whatever the order they were created in.
	ChainPriority = 110
)

// Set names. Both nomasq sets always exist so that the schema does not
// depend on ip-masq-agent's settings; the source sets exist only while
// masqueradeSourceCIDRs is set.
const (
	SetV4    = "nomasq-v4"
	SetV6    = "nomasq-v6"
	SetSrcV4 = "masq-src-v4"
	SetSrcV6 = "masq-src-v6"
)

// Options are the command-line settings that shape the ruleset.
type Options struct {
	// Table is the name of the inet table masqd owns (--table).
	Table string
	// Chain is the name of the NAT chain in that table (--masq-chain).
	Chain string
	// EnableIPv6 masquerades IPv6 traffic too (--enable-ipv6).
	EnableIPv6 bool
	// RandomFully asks for fully random source ports (--random-fully).
	RandomFully bool
	// ToPorts restricts the source ports of masqueraded TCP and UDP
	// connections; several ranges are used with equal probability (--to-ports).
	ToPorts []PortRange
	// SNATv4 and SNATv6, when valid, are the source addresses that
	// outbound traffic of their family is translated to instead of the
	// outgoing interface's address (--snat-address, --snat-address-ipv6).
	SNATv4, SNATv6 netip.Addr
}

// DefaultOptions returns ip-masq-agent's defaults.
func DefaultOptions() Options {
	return Options{Table: DefaultTable, Chain: DefaultChain, RandomFully: true}
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Min, Max uint16
}

func (r PortRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(int(r.Min))
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// ParsePortRanges parses --to-ports: "1024-29999,32768-65535" or "5000".
func ParsePortRanges(s string) ([]PortRange, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		min, err1 := strconv.ParseUint(lo, 10, 16)
		max, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || min == 0 || min > max {
			return nil, fmt.Errorf("port range %q: want PORT or MIN-MAX with 1 <= MIN <= MAX <= 65535", part)
		}
		out = append(out, PortRange{Min: uint16(min), Max: uint16(max)})
	}
	return out, nil
}

// Family is the address family a rule applies to.
type Family uint8

// Families. Any matches both.
const (
	Any Family = iota
	IPv4
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "any"
}

// Layer-4 protocol numbers used by --to-ports rules.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Match is what a rule tests. Every set field must match; the zero Match
// matches every packet.
type Match struct {
	// Family restricts the rule to one family (meta nfproto).
	Family Family
	// Local matches destinations local to the node (fib daddr type local).
	Local bool
	// Prefix matches destinations inside a prefix (ip/ip6 daddr).
	Prefix netip.Prefix
	// Set matches destinations in one of the ruleset's sets.
	Set string
	// SourceNotIn matches sources outside one of the ruleset's sets.
	SourceNotIn string
	// L4Proto matches a transport protocol (meta l4proto).
	L4Proto uint8
	// Modulus, when above 1, matches one packet in Modulus at random
	// (numgen random mod Modulus 0).
	Modulus uint32
}

// Rule is one rule of masqd's chain: when Match holds, the packet is either
// masqueraded or returned (left alone).
type Rule struct {
	// Name identifies the rule in metrics: local, link-local,
	// non-masquerade, ipv6-disabled, masquerade, masquerade-tcp-1, ...
	// It is not sent to the kernel.
	Name       string
	Match      Match
	Masquerade bool
	// SNAT, when valid, makes the masquerade a source NAT to this address.
	SNAT netip.Addr
	// Ports is the source port range of a masquerade; zero means any.
	Ports       PortRange
	FullyRandom bool
	Comment     string
}

// Set is one of masqd's interval sets.
type Set struct {
	Name      string
	Family    Family
	Comment   string
	Intervals []Interval
}

// Ruleset is the desired content of masqd's table: a pure value.
type Ruleset struct {
	Table string
	Chain string
	Sets  []Set
	Rules []Rule
}

// Build computes the ruleset for a config. It does no I/O.
func Build(cfg *config.Config, opts Options) *Ruleset {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Chain == "" {
		opts.Chain = DefaultChain
	}
	rs := &Ruleset{
		Table: opts.Table,
		Chain: opts.Chain,
		Sets: []Set{
			{Name: SetV4, Family: IPv4, Comment: "masqd: nonMasqueradeCIDRs (IPv4)"},
			{Name: SetV6, Family: IPv6, Comment: "masqd: nonMasqueradeCIDRs (IPv6)"},
		},
	}
	// With exceptions, the most specific prefix decides: masqd folds the
	// link-local exemption into the sets too, so that an exception can
	// reach inside it (169.254.169.254/32), and the kernel still does one
	// lookup per packet. The sets keep their comments: the kernel does not
	// change a set's comment in place.
	exceptions := len(cfg.MasqueradeCIDRs) > 0
	if exceptions {
		rs.Sets[0].Intervals = exempt(spans(cfg, opts, IPv4))
		rs.Sets[1].Intervals = exempt(spans(cfg, opts, IPv6))
	} else {
		v4, v6 := split(cfg.NonMasqueradeCIDRs)
		rs.Sets[0].Intervals, rs.Sets[1].Intervals = Merge(v4), Merge(v6)
	}
	ret := func(name string, m Match, comment string) {
		rs.Rules = append(rs.Rules, Rule{Name: name, Match: m, Comment: comment})
	}
	ret("local", Match{Local: true}, "masqd: local destinations are not masqueraded")
	if len(cfg.MasqueradeSourceCIDRs) > 0 {
		src4, src6 := split(cfg.MasqueradeSourceCIDRs)
		const comment = "masqd: only masqueradeSourceCIDRs are masqueraded"
		rs.Sets = append(rs.Sets, Set{Name: SetSrcV4, Family: IPv4, Comment: "masqd: masqueradeSourceCIDRs (IPv4)", Intervals: Merge(src4)})
		ret("other-sources", Match{Family: IPv4, SourceNotIn: SetSrcV4}, comment)
		if opts.EnableIPv6 {
			rs.Sets = append(rs.Sets, Set{Name: SetSrcV6, Family: IPv6, Comment: "masqd: masqueradeSourceCIDRs (IPv6)", Intervals: Merge(src6)})
			ret("other-sources-ipv6", Match{Family: IPv6, SourceNotIn: SetSrcV6}, comment)
		}
	}
	if !cfg.MasqLinkLocal && !exceptions {
		ret("link-local", Match{Family: IPv4, Prefix: linkLocalV4}, "masqd: link-local is not masqueraded (masqLinkLocal: false)")
	}
	ret("non-masquerade", Match{Family: IPv4, Set: SetV4}, "masqd: nonMasqueradeCIDRs are not masqueraded")
	if opts.EnableIPv6 {
		if !cfg.MasqLinkLocalIPv6 && !exceptions {
			ret("link-local-ipv6", Match{Family: IPv6, Prefix: linkLocalV6}, "masqd: link-local is not masqueraded (masqLinkLocalIPv6: false)")
		}
		ret("non-masquerade-ipv6", Match{Family: IPv6, Set: SetV6}, "masqd: nonMasqueradeCIDRs are not masqueraded")
	} else {
		ret("ipv6-disabled", Match{Family: IPv6}, "masqd: IPv6 is not masqueraded (--enable-ipv6=false)")
	}
	rs.Rules = append(rs.Rules, masqueradeRules(opts)...)
	return rs
}

var (
	linkLocalV4 = netip.MustParsePrefix("169.254.0.0/16")
	linkLocalV6 = netip.MustParsePrefix("fe80::/10")
)

// split separates IPv4 prefixes from IPv6 ones.
func split(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	// Sized up front: growing by append left five times the list behind
	// as garbage (17 MB at 100,000 CIDRs).
	n4 := 0
	for _, p := range ps {
		if p.Addr().Is4() {
			n4++
		}
	}
	if n4 > 0 {
		v4 = make([]netip.Prefix, 0, n4)
	}
	if n4 < len(ps) {
		v6 = make([]netip.Prefix, 0, len(ps)-n4)
	}
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// masqueradeRules returns the chain's tail. With several --to-ports ranges,
// rule i of n matches with probability 1/(n-i), so each range gets an equal
// share, as ip-masq-agent's statistic matches do. Protocols without ports
// (ICMP) fall through to a plain masquerade.
//
// Port-range rules carry no fully-random flag: google/nftables v0.3.0 drops
// the masquerade flags whenever it encodes a port range, so asking for both
// would leave the kernel different from this value. The kernel still picks
// ports inside the range.
func masqueradeRules(opts Options) []Rule {
	var rules []Rule
	n := len(opts.ToPorts)
	for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
		for i, pr := range opts.ToPorts {
			m := Match{L4Proto: proto}
			if n-i > 1 {
				m.Modulus = uint32(n - i)
			}
			rules = append(rules, Rule{
				Name:       fmt.Sprintf("masquerade-%s-%d", protoName(proto), i+1),
				Match:      m,
				Masquerade: true,
				Ports:      pr,
				Comment:    fmt.Sprintf("masqd: outbound %s is masqueraded to ports %s (%d of %d)", protoName(proto), pr, i+1, n),
			})
		}
	}
	// --snat-address: a family with a chosen address is translated to it;
	// masquerade covers the rest, if anything is left for it.
	left := true
	if opts.SNATv4.IsValid() {
		rules = append(rules, Rule{Name: "snat", Match: Match{Family: IPv4}, Masquerade: true, SNAT: opts.SNATv4,
			FullyRandom: opts.RandomFully, Comment: "masqd: outbound IPv4 is translated to --snat-address"})
		left = opts.EnableIPv6 && !opts.SNATv6.IsValid()
	}
	if opts.EnableIPv6 && opts.SNATv6.IsValid() {
		rules = append(rules, Rule{Name: "snat-ipv6", Match: Match{Family: IPv6}, Masquerade: true, SNAT: opts.SNATv6,
			FullyRandom: opts.RandomFully, Comment: "masqd: outbound IPv6 is translated to --snat-address-ipv6"})
		left = !opts.SNATv4.IsValid()
	}
	if !left {
		return rules
	}
	return append(rules, Rule{
		Name:        "masquerade",
		Masquerade:  true,
		FullyRandom: opts.RandomFully,
		Comment:     "masqd: outbound traffic is masqueraded",
	})
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// Set returns the set with the given name, or nil.
func (rs *Ruleset) Set(name string) *Set {
	for i := range rs.Sets {
		if rs.Sets[i].Name == name {
			return &rs.Sets[i]
		}
	}
	return nil
}
