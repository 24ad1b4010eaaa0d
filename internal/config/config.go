package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultPath is where ip-masq-agent, and so masqd, look for the config.
const DefaultPath = "/etc/config/ip-masq-agent"

// DefaultResyncInterval is ip-masq-agent's default resyncInterval.
const DefaultResyncInterval = 60 * time.Second

// Options are the command-line settings that change how a config is read.
type Options struct {
	// EnableIPv6 permits IPv6 entries in nonMasqueradeCIDRs (--enable-ipv6).
	EnableIPv6 bool
	// NoMasqAllReservedRanges widens the default list to every reserved IPv4
	// range (--nomasq-all-reserved-ranges).
	NoMasqAllReservedRanges bool
	// Strict makes every warning a problem (--strict): a config with
	// warnings is then invalid.
	Strict bool
}

// Config is a validated, normalised config. Treat it as immutable.
type Config struct {
	// NonMasqueradeCIDRs lists the destinations that keep the pod's source
	// address, in the order the files list them, masked. It may hold
	// duplicates and overlaps: nft.Build merges them.
	NonMasqueradeCIDRs []netip.Prefix
	// MasqLinkLocal masquerades 169.254.0.0/16 too.
	MasqLinkLocal bool
	// MasqLinkLocalIPv6 masquerades fe80::/10 too.
	MasqLinkLocalIPv6 bool
	// ResyncInterval is how often the agent re-reads and re-checks.
	ResyncInterval time.Duration
	// CIDRLimit caps the number of nonMasqueradeCIDRs entries; 0 means no cap.
	CIDRLimit int
	// MasqueradeCIDRs are exceptions inside NonMasqueradeCIDRs: destinations
	// that are masqueraded although a wider entry exempts them. The most
	// specific prefix decides; on a tie masquerading wins.
	MasqueradeCIDRs []netip.Prefix
	// MasqueradeSourceCIDRs, when not empty, restrict masquerading to
	// packets from these sources.
	MasqueradeSourceCIDRs []netip.Prefix
	// Files are the files the config was read from, in the order read; empty
	// when the defaults apply because no file exists.
	Files []string

	// sources says where each entry of each list came from.
	sources [numLists][]run
	// warnings found while parsing; Warnings adds the conflicts.
	warnings []Problem
}

// The defaults' nonMasqueradeCIDRs, as in ip-masq-agent: the RFC 1918 ranges,
// and with --nomasq-all-reserved-ranges every reserved IPv4 range.
var (
	defaultCIDRs = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

	reservedCIDRs = mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Default returns the config that applies when no file sets anything, as
// ip-masq-agent defines it.
func Default(opts Options) *Config {
	cidrs := defaultCIDRs
	if opts.NoMasqAllReservedRanges {
		cidrs = reservedCIDRs
	}
	return &Config{
		NonMasqueradeCIDRs: slices.Clone(cidrs),
		ResyncInterval:     DefaultResyncInterval,
	}
}

// Equal reports whether c and o hold the same settings, ignoring the files
// they came from. NonMasqueradeCIDRs are compared in order; a nil list equals
// an empty one.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return slices.Equal(c.NonMasqueradeCIDRs, o.NonMasqueradeCIDRs) &&
		slices.Equal(c.MasqueradeCIDRs, o.MasqueradeCIDRs) &&
		slices.Equal(c.MasqueradeSourceCIDRs, o.MasqueradeSourceCIDRs) &&
		c.MasqLinkLocal == o.MasqLinkLocal &&
		c.MasqLinkLocalIPv6 == o.MasqLinkLocalIPv6 &&
		c.ResyncInterval == o.ResyncInterval &&
		c.CIDRLimit == o.CIDRLimit
}

// Summary describes c in one line, for logs.
func (c *Config) Summary() string {
	var v4 int
	for _, p := range c.NonMasqueradeCIDRs {
		if p.Addr().Is4() {
			v4++
		}
	}
	limit := "none"
	if c.CIDRLimit > 0 {
		limit = strconv.Itoa(c.CIDRLimit)
	}
	from := "defaults (no config file)"
	if len(c.Files) > 0 {
		from = strings.Join(c.Files, ", ")
	}
	n := len(c.NonMasqueradeCIDRs)
	var extra string
	if n := len(c.MasqueradeCIDRs); n > 0 {
		extra += fmt.Sprintf(", %d masqueradeCIDRs", n)
	}
	if n := len(c.MasqueradeSourceCIDRs); n > 0 {
		extra += fmt.Sprintf(", %d masqueradeSourceCIDRs", n)
	}
	return fmt.Sprintf("%d nonMasqueradeCIDRs (%d IPv4, %d IPv6)%s, masqLinkLocal=%t, masqLinkLocalIPv6=%t, resyncInterval=%s, cidrLimit=%s, from %s",
		n, v4, n-v4, extra, c.MasqLinkLocal, c.MasqLinkLocalIPv6, formatDuration(c.ResyncInterval), limit, from)
}

// formatDuration writes whole seconds as "60s" rather than time's "1m0s", the
// way configs spell them.
func formatDuration(d time.Duration) string {
	if d > 0 && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
