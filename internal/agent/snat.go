package agent

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/nft"
)

// WarnForeignSNAT warns about a --snat-address that is not one of the
// node's addresses (nodeAddrs lists them): connections are translated to
// it, but their replies reach the node only if something else routes that
// address here (a VIP that moves, say), so egress may silently stop. It is
// a warning, not an error, for that reason.
func WarnForeignSNAT(log *zap.Logger, opts nft.Options, nodeAddrs func() (map[netip.Addr]bool, error)) {
	if !opts.SNATv4.IsValid() && !opts.SNATv6.IsValid() {
		return
	}
	own, err := nodeAddrs()
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
