package nft

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

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
	sum := sha256.Sum256([]byte(CanonicalConfig(cfg, opts)))
	return hex.EncodeToString(sum[:8])
}

// CanonicalConfig is the text ConfigHash hashes: one "key=value" line per
// setting, in a fixed order.
func CanonicalConfig(cfg *config.Config, opts Options) string {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Chain == "" {
		opts.Chain = DefaultChain
	}
	var b strings.Builder
	for _, kv := range []struct {
		k string
		v any
	}{
		{"nonMasqueradeCIDRs", canonicalPrefixes(cfg.NonMasqueradeCIDRs)},
		{"masqueradeCIDRs", canonicalPrefixes(cfg.MasqueradeCIDRs)},
		{"masqueradeSourceCIDRs", canonicalPrefixes(cfg.MasqueradeSourceCIDRs)},
		{"masqLinkLocal", cfg.MasqLinkLocal},
		{"masqLinkLocalIPv6", cfg.MasqLinkLocalIPv6},
		{"resyncInterval", cfg.ResyncInterval},
		{"cidrLimit", cfg.CIDRLimit},
		{"table", opts.Table},
		{"chain", opts.Chain},
		{"enableIPv6", opts.EnableIPv6},
		{"randomFully", opts.RandomFully},
	} {
		fmt.Fprintf(&b, "%s=%v\n", kv.k, kv.v)
	}
	return b.String()
}

// canonicalPrefixes renders a list as a sorted set.
func canonicalPrefixes(ps []netip.Prefix) string {
	sorted := slices.SortedFunc(slices.Values(ps), func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	sorted = slices.Compact(sorted)
	out := make([]string, len(sorted))
	for i, p := range sorted {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}
