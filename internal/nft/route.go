package nft

import (
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The node's addresses and its local destinations come from rtnetlink. Each
// call dials its own socket, so any goroutine may call these functions.

// NodeAddrs returns the addresses of the interfaces of the network
// namespace at nsPath, or of the caller's when nsPath is empty.
func NodeAddrs(nsPath string) (map[netip.Addr]bool, error) {
	msgs, err := dumpRoute(nsPath, unix.RTM_GETADDR, unix.SizeofIfAddrmsg)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	own := map[netip.Addr]bool{}
	for _, m := range msgs {
		err := attrsAfter(m.Data, unix.SizeofIfAddrmsg, func(typ uint16, b []byte) {
			if typ != unix.IFA_ADDRESS && typ != unix.IFA_LOCAL {
				return
			}
			if a, ok := netip.AddrFromSlice(b); ok {
				own[a.Unmap()] = true
			}
		})
		if err != nil {
			return nil, fmt.Errorf("parse an address: %w", err)
		}
	}
	return own, nil
}

// LocalRoutes returns, sorted, the destinations that the routing tables of
// the network namespace at nsPath (the caller's when empty) declare local:
// the routes of type RTN_LOCAL, which `fib daddr type local` matches. They
// include more than the interfaces' addresses: 127.0.0.0/8 is local as a
// whole, and so is any prefix added with `ip route add local`.
func LocalRoutes(nsPath string) ([]netip.Prefix, error) {
	msgs, err := dumpRoute(nsPath, unix.RTM_GETROUTE, unix.SizeofRtMsg)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []netip.Prefix
	for _, m := range msgs {
		// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
		if len(m.Data) < unix.SizeofRtMsg || m.Data[7] != unix.RTN_LOCAL {
			continue
		}
		var dst netip.Addr
		err := attrsAfter(m.Data, unix.SizeofRtMsg, func(typ uint16, b []byte) {
			if typ == unix.RTA_DST {
				dst, _ = netip.AddrFromSlice(b)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("parse a route: %w", err)
		}
		if !dst.IsValid() {
			continue
		}
		if p, err := dst.Unmap().Prefix(int(m.Data[1])); err == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out, nil
}

// dumpRoute sends one rtnetlink dump request of type typ, whose header of
// hdrLen bytes is zero (every family), in the namespace at nsPath.
func dumpRoute(nsPath string, typ netlink.HeaderType, hdrLen int) ([]netlink.Message, error) {
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
	return c.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, hdrLen),
	})
}

// attrsAfter calls fn for each attribute after a message's fixed header of
// hdrLen bytes; a shorter message has none.
func attrsAfter(data []byte, hdrLen int, fn func(typ uint16, b []byte)) error {
	if len(data) < hdrLen {
		return nil
	}
	return eachAttr(data[hdrLen:], func(typ uint16, b []byte) error {
		fn(typ, b)
		return nil
	})
}
