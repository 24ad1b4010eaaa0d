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
	var src netip.Addr
	if s.source != "" {
		var err error
		if src, err = netip.ParseAddr(s.source); err != nil {
			return fmt.Errorf("explain: --source %q is not an IP address", s.source)
		}
		src = src.Unmap()
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	local := localAddrs()
	for _, ip := range addrs {
		fmt.Fprintln(e.stdout, explain(cfg, rs, opts, s.configPath, nft.Packet{Dst: ip, Src: src, Local: local[ip]}))
	}
	return nil
}

// explain says whether packet p is masqueraded and why, naming the config
// entry that decided and the file and line that wrote it: with
// masqueradeCIDRs, the most specific entry and the one it overrides;
// otherwise the merged interval that matched and the entries that contain
// the address. Other verdicts cite the deciding rule, numbered from 1 as
// it appears in the chain, and its comment.
func explain(cfg *config.Config, rs *nft.Ruleset, opts nft.Options, configPath string, p nft.Packet) string {
	v := rs.Trace(p)
	ip := p.Dst
	verdict := "not masqueraded"
	switch {
	case v.SNAT.IsValid():
		verdict = "masqueraded (snat to " + v.SNAT.String() + ")"
	case v.Masquerade:
		verdict = "masqueraded"
	}
	var out string
	switch {
	case v.Rule < 0:
		out = fmt.Sprintf("%s: %s (no rule matched; the chain's policy accepts)", ip, verdict)
	case len(cfg.MasqueradeCIDRs) > 0 && decidedByEntries(rs.Rules[v.Rule]):
		in := nft.Containing(cfg, opts, ip)
		if len(in) == 0 {
			out = fmt.Sprintf("%s: %s: no nonMasqueradeCIDRs entry contains it (rule %d: %q)", ip, verdict, v.Rule+1, v.Comment)
			break
		}
		out = fmt.Sprintf("%s: %s: decided by %s", ip, verdict, describe(in[0]))
		for _, e := range in[1:] {
			if e.Masquerade != in[0].Masquerade {
				out += ", the most specific entry; it overrides " + describe(e)
				break
			}
		}
	case v.Interval.First.IsValid():
		var from []string
		for i, pr := range cfg.NonMasqueradeCIDRs {
			if !pr.Contains(ip) {
				continue
			}
			switch src := cfg.Source(config.NonMasquerade, i); {
			case len(cfg.Files) == 0:
				from = append(from, pr.String())
			case src.File == "":
				from = append(from, pr.String()+", a default")
			default:
				from = append(from, pr.String()+" at "+src.String())
			}
		}
		if len(cfg.Files) == 0 {
			from[len(from)-1] += " in the defaults; no config file at " + configPath
		}
		out = fmt.Sprintf("%s: %s: in nonMasqueradeCIDRs %s (from %s)", ip, verdict, v.Interval, strings.Join(from, ", "))
	default:
		out = fmt.Sprintf("%s: %s (rule %d: %q)", ip, verdict, v.Rule+1, v.Comment)
	}
	if len(cfg.MasqueradeSourceCIDRs) > 0 && !p.Src.IsValid() && v.Masquerade {
		out += "; this holds for sources in masqueradeSourceCIDRs, others are not masqueraded (ask with --source)"
	}
	if p.Local {
		out += "; it is an address of this network namespace"
	}
	return out
}

// decidedByEntries reports whether rule r's verdict follows from the
// destination lists: the exempt sets, or the masquerade the lists let
// through.
func decidedByEntries(r nft.Rule) bool {
	return r.Match.Set != "" || (r.Masquerade && r.Match.SourceNotIn == "")
}

// describe names a config entry and where it was written.
func describe(e nft.Entry) string {
	if e.Source.File == "" && e.Why != config.NonMasquerade.String() {
		return fmt.Sprintf("%s in %s", e.Prefix, e.Why)
	}
	return fmt.Sprintf("%s in %s (%s)", e.Prefix, e.Why, e.Source)
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
