package nft

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"

	"github.com/masqd/masqd/internal/config"
)

// ConfigHash identifies what a node applies, so that a fleet can be
// compared: `count by (hash) (masqd_config_info)` shows how far a
// ConfigMap change has rolled out. Two nodes get the same hash when their
// merged config and the flags that shape the ruleset the same way on every
// node agree, whatever the files' order, formatting or split into drop-ins;
// each list counts as a set of prefixes (sorted, duplicates dropped).
// --snat-address and --snat-address-ipv6 are left out: they differ per node
// by design.
//
// The hash is the first 16 hex digits of a SHA-256 over a canonical text;
// CanonicalConfig returns that text.
func ConfigHash(cfg *config.Config, opts Options) string {
	sum := sha256.Sum256(appendCanonical(nil, cfg, opts))
	return hex.EncodeToString(sum[:8])
}

// CanonicalConfig is the text ConfigHash hashes: one "key=value" line per
// setting, in a fixed order.
func CanonicalConfig(cfg *config.Config, opts Options) string {
	return string(appendCanonical(nil, cfg, opts))
}

// appendCanonical appends the canonical text to b. The agent hashes it on
// every config change, after the sync and before its log line: at 100,000
// CIDRs, rendering each prefix to a string of its own and sorting a copy
// of a list already in order took 20 ms.
func appendCanonical(b []byte, cfg *config.Config, opts Options) []byte {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Chain == "" {
		opts.Chain = DefaultChain
	}
	for _, kv := range []struct {
		k  string
		ps []netip.Prefix
	}{
		{"nonMasqueradeCIDRs", cfg.NonMasqueradeCIDRs},
		{"masqueradeCIDRs", cfg.MasqueradeCIDRs},
		{"masqueradeSourceCIDRs", cfg.MasqueradeSourceCIDRs},
	} {
		b = append(append(b, kv.k...), '=')
		b = append(appendPrefixes(b, kv.ps), '\n')
	}
	for _, kv := range []struct {
		k string
		v any
	}{
		{"masqLinkLocal", cfg.MasqLinkLocal},
		{"masqLinkLocalIPv6", cfg.MasqLinkLocalIPv6},
		{"resyncInterval", cfg.ResyncInterval},
		{"cidrLimit", cfg.CIDRLimit},
		{"table", opts.Table},
		{"chain", opts.Chain},
		{"enableIPv6", opts.EnableIPv6},
		{"randomFully", opts.RandomFully},
	} {
		b = fmt.Appendf(b, "%s=%v\n", kv.k, kv.v)
	}
	return b
}

// appendPrefixes appends a list as a sorted set, comma-separated: sorted by
// address, then length, without duplicates. A list in order is not copied.
func appendPrefixes(b []byte, ps []netip.Prefix) []byte {
	byAddr := func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	}
	if !slices.IsSortedFunc(ps, byAddr) {
		ps = slices.Clone(ps)
		slices.SortFunc(ps, byAddr)
	}
	b = slices.Grow(b, len(ps)*len("255.255.255.255/32,"))
	for i, p := range ps {
		switch {
		case i > 0 && p == ps[i-1]:
			continue
		case i > 0:
			b = append(b, ',')
		}
		// Config prefixes are parsed, so valid: AppendTo writes what
		// String returns.
		b = p.AppendTo(b)
	}
	return b
}
