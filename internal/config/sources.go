package config

import "net/netip"

// MasqueradeSources returns the masqueradeSourceCIDRs of one family, and
// whether the config restricts sources at all: without masqueradeSourceCIDRs
// every source is masqueraded (all is true); with some, only they are, so a
// family none of them belongs to is not masqueraded at all. The ruleset,
// `masqd explain` and the warning `masqd check` prints all ask this.
func (c *Config) MasqueradeSources(ipv6 bool) (srcs []netip.Prefix, all bool) {
	if len(c.MasqueradeSourceCIDRs) == 0 {
		return nil, true
	}
	srcs = []netip.Prefix{}
	for _, p := range c.MasqueradeSourceCIDRs {
		if p.Addr().Is6() == ipv6 {
			srcs = append(srcs, p)
		}
	}
	return srcs, false
}
