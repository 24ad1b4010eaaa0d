package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/mdlayher/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

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
	own, err := nodeAddrs(s.netns)
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

// nodeAddrs lists the addresses of the network namespace at nsPath, or of
// the caller's when nsPath is empty, over rtnetlink.
func nodeAddrs(nsPath string) (map[netip.Addr]bool, error) {
	var cfg netlink.Config
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &cfg)
	if err != nil {
		return nil, fmt.Errorf("dial rtnetlink: %w", err)
	}
	defer c.Close()
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfAddrmsg), // any family
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	own := map[netip.Addr]bool{}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, fmt.Errorf("parse an address: %w", err)
		}
		for ad.Next() {
			if ad.Type() != unix.IFA_ADDRESS && ad.Type() != unix.IFA_LOCAL {
				continue
			}
			if a, ok := netip.AddrFromSlice(ad.Bytes()); ok {
				own[a.Unmap()] = true
			}
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("parse an address: %w", err)
		}
	}
	return own, nil
}
