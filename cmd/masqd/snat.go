package main

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/nft"
)

// warnForeignSNAT warns about a --snat-address that is not an address of
// the node: connections are translated to it, but their replies reach the
// node only if something else routes that address here (a VIP that moves,
// say), so egress may silently stop. It is a warning, not an error, for
// that reason.
func warnForeignSNAT(s *settings, opts nft.Options, log *zap.Logger) {
	if !opts.SNATv4.IsValid() && !opts.SNATv6.IsValid() {
		return
	}
	own, err := nft.NodeAddrs(s.netns)
	if err != nil {
		log.Warn("cannot list the node's addresses to check --snat-address", zap.Error(err))
		return
	}
	for flag, a := range map[string]netip.Addr{"--snat-address": opts.SNATv4, "--snat-address-ipv6": opts.SNATv6} {
		if a.IsValid() && !own[a] {
			log.Warn(flag+" is not an address of this node: replies to it come back only if something else routes it here",
				zap.Stringer("address", a))
		}
	}
}
