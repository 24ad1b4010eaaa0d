package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/masqd/masqd/internal/conntrack"
)

// runFlows answers "which pod sent this connection from node address X,
// port P?" from conntrack, read-only.
func runFlows(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("flows", args); err != nil {
		return err
	}
	m, err := s.flowMatch()
	if err != nil {
		return err
	}
	ts, err := conntrack.Translations(ctx, s.netns, m)
	if err != nil {
		return kernelHint(s, err)
	}
	if len(ts) == 0 {
		fmt.Fprintln(e.stdout, "no matching translations in conntrack")
		return nil
	}
	fmt.Fprintf(e.stdout, "%-7s %-45s %-45s %s\n", "PROTO", "POD", "NODE (TRANSLATED)", "DESTINATION")
	for _, t := range ts {
		fmt.Fprintf(e.stdout, "%-7s %-45s %-45s %s\n", t.Proto, t.Pod, t.Node, t.Dst)
	}
	return nil
}

// flowMatch parses flows' filters.
func (s *settings) flowMatch() (conntrack.Match, error) {
	var m conntrack.Match
	if s.flowPort != "" {
		p, err := strconv.ParseUint(s.flowPort, 10, 16)
		if err != nil || p == 0 {
			return m, fmt.Errorf("--port: %q is not a port; give the node's translated source port, 1-65535", s.flowPort)
		}
		m.Port = uint16(p)
	}
	if s.flowPod != "" {
		a, err := netip.ParseAddr(s.flowPod)
		if err != nil {
			return m, fmt.Errorf("--pod: %q is not an IP address; give the pod's address", s.flowPod)
		}
		m.Pod = a.Unmap()
	}
	if s.flowDst != "" {
		p, err := netip.ParsePrefix(s.flowDst)
		if err != nil {
			a, aerr := netip.ParseAddr(s.flowDst)
			if aerr != nil {
				return m, fmt.Errorf("--destination: %q is neither an address nor a CIDR", s.flowDst)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		m.Dst = p.Masked()
	}
	return m, nil
}
