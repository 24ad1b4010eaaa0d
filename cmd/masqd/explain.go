package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

func runExplain(_ context.Context, s *settings, args []string, e env) error {
	if len(args) == 0 {
		return errors.New("explain needs one or more IP addresses")
	}
	addrs := make([]netip.Addr, len(args))
	for i, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("explain: %q is not an IP address", a)
		}
		addrs[i] = ip.Unmap()
	}
	cfg, rs, err := load(s)
	if err != nil {
		return err
	}
	local := localAddrs()
	for _, ip := range addrs {
		fmt.Fprintln(e.stdout, explain(cfg, rs, s.configPath, ip, local[ip]))
	}
	return nil
}

// explain says whether a packet to ip is masqueraded and why: for the
// nonMasqueradeCIDRs, the merged interval that matched and the config
// entries that contain ip; otherwise the deciding rule, numbered from 1 as
// it appears in the chain, and its comment.
func explain(cfg *config.Config, rs *nft.Ruleset, configPath string, ip netip.Addr, local bool) string {
	v := rs.Trace(nft.Packet{Dst: ip, Local: local})
	verdict := "not masqueraded"
	if v.Masquerade {
		verdict = "masqueraded"
	}
	var out string
	switch {
	case v.Rule < 0:
		out = fmt.Sprintf("%s: %s (no rule matched; the chain's policy accepts)", ip, verdict)
	case v.Interval.First.IsValid():
		var from []string
		for _, p := range cfg.NonMasqueradeCIDRs {
			if p.Contains(ip) {
				from = append(from, p.String())
			}
		}
		src := "the defaults; no config file at " + configPath
		if len(cfg.Files) > 0 {
			src = strings.Join(cfg.Files, ", ")
		}
		out = fmt.Sprintf("%s: %s: in nonMasqueradeCIDRs %s (from %s in %s)", ip, verdict, v.Interval, strings.Join(from, ", "), src)
	default:
		out = fmt.Sprintf("%s: %s (rule %d: %q)", ip, verdict, v.Rule+1, v.Comment)
	}
	if local {
		out += "; it is an address of this network namespace"
	}
	return out
}

// localAddrs are the addresses of this network namespace's interfaces.
func localAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return m
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr().Unmap()] = true
		}
	}
	return m
}
