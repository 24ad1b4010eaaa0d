package config

import (
	"net/netip"
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
	// Files are the files the config was read from, in the order read; empty
	// when the defaults apply because no file exists.
	Files []string
}
