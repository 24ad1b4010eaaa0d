package nft

import (
	"net/netip"

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
	// SNATv4 and SNATv6, when valid, are the source addresses that
	// outbound traffic of their family is translated to instead of the
	// outgoing interface's address (--snat-address, --snat-address-ipv6).
	SNATv4, SNATv6 netip.Addr
}

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
}

// Rule is one rule of masqd's chain: when Match holds, the packet is either
// masqueraded or returned (left alone).
type Rule struct {
	// Name identifies the rule in metrics: local, link-local,
	// non-masquerade, ipv6-disabled, snat, masquerade, ...
	// It is not sent to the kernel.
	Name       string
	Match      Match
	Masquerade bool
	// SNAT, when valid, makes the masquerade a source NAT to this address.
	SNAT        netip.Addr
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
	rs := &Ruleset{Table: opts.Table, Chain: opts.Chain}
	// With exceptions, the most specific prefix decides: masqd folds the
	// link-local exemption into the sets too, so that an exception can
	// reach inside it (169.254.169.254/32), and the kernel still does one
	// lookup per packet. The sets keep their comments: the kernel does not
	// change a set's comment in place.
	exceptions := len(cfg.MasqueradeCIDRs) > 0
	nomasq := byFamily(cfg.NonMasqueradeCIDRs)
	for _, f := range families {
		fi := f.info()
		s := Set{Name: fi.nomasqSet, Family: f, Comment: "masqd: nonMasqueradeCIDRs (" + fi.label + ")"}
		if exceptions {
			s.Intervals = exempt(spans(cfg, opts, f))
		} else {
			s.Intervals = Merge(nomasq[f])
		}
		rs.Sets = append(rs.Sets, s)
	}
	ret := func(name string, m Match, comment string) {
		rs.Rules = append(rs.Rules, Rule{Name: name, Match: m, Comment: comment})
	}
	ret("local", Match{Local: true}, "masqd: local destinations are not masqueraded")
	if _, all := cfg.MasqueradeSources(false); !all {
		for _, f := range families {
			if fi := f.info(); fi.enabled(opts) {
				src, _ := cfg.MasqueradeSources(f == IPv6)
				rs.Sets = append(rs.Sets, Set{Name: fi.srcSet, Family: f, Comment: "masqd: masqueradeSourceCIDRs (" + fi.label + ")", Intervals: Merge(src)})
				ret("other-sources"+fi.suffix, Match{Family: f, SourceNotIn: fi.srcSet}, "masqd: only masqueradeSourceCIDRs are masqueraded")
			}
		}
	}
	for _, f := range families {
		fi := f.info()
		if !fi.enabled(opts) {
			ret(fi.name+"-disabled", Match{Family: f}, "masqd: "+fi.label+" is not masqueraded ("+fi.enableFlag+"=false)")
			continue
		}
		if !fi.masqLinkLocal(cfg) && !exceptions {
			ret("link-local"+fi.suffix, Match{Family: f, Prefix: fi.linkLocal}, "masqd: link-local is not masqueraded ("+fi.linkLocalKey+": false)")
		}
		ret("non-masquerade"+fi.suffix, Match{Family: f, Set: fi.nomasqSet}, "masqd: nonMasqueradeCIDRs are not masqueraded")
	}
	rs.Rules = append(rs.Rules, masqueradeRules(opts)...)
	return rs
}

// masqueradeRules returns the chain's tail: a source NAT for each family
// given an address, then a masquerade for the rest.
func masqueradeRules(opts Options) []Rule {
	var rules []Rule
	// --snat-address: a family with a chosen address is translated to it;
	// masquerade covers the rest, if anything is left for it.
	left := false
	for _, f := range families {
		fi := f.info()
		if !fi.enabled(opts) {
			continue
		}
		a := fi.snat(opts)
		if !a.IsValid() {
			left = true
			continue
		}
		rules = append(rules, Rule{Name: "snat" + fi.suffix, Match: Match{Family: f}, Masquerade: true, SNAT: a,
			FullyRandom: opts.RandomFully, Comment: "masqd: outbound " + fi.label + " is translated to " + fi.snatFlag})
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

// Set returns the set with the given name, or nil.
func (rs *Ruleset) Set(name string) *Set {
	for i := range rs.Sets {
		if rs.Sets[i].Name == name {
			return &rs.Sets[i]
		}
	}
	return nil
}
