package nft

import "net/netip"

// Packet is what the tracer needs to know about a packet leaving the node.
type Packet struct {
	Dst netip.Addr
	// Src is the packet's source. The zero Addr stands for a pod: a source
	// inside masqueradeSourceCIDRs, when they list one of Dst's family.
	Src netip.Addr
	// Local says that Dst is local to the node: the kernel has a local
	// route for it (fib daddr type local).
	Local bool
}

// Verdict is the tracer's answer for a packet.
type Verdict struct {
	Masquerade bool
	// Rule is the index of the deciding rule, -1 when no rule matched (the
	// chain's policy accepts, so the packet is not masqueraded).
	Rule int
	// Comment is that rule's comment.
	Comment string
	// Interval is the set element that matched, for set rules.
	Interval Interval
	// SNAT is the address of a source NAT with --snat-address.
	SNAT netip.Addr
}

// lookup answers whether a packet to dst, not local to the node, is
// masqueraded, and which rule decided.
func (rs *Ruleset) lookup(dst netip.Addr) Verdict {
	return rs.Trace(Packet{Dst: dst})
}

// Trace runs a packet through the chain as the kernel would. numgen matches
// are taken as hitting, which is the first of the equally likely outcomes.
func (rs *Ruleset) Trace(p Packet) Verdict {
	dst := p.Dst.Unmap()
	fam := addrFamily(dst)
	for i, r := range rs.Rules {
		m := r.Match
		if m.Family != Any && m.Family != fam {
			continue
		}
		if m.Local && !p.Local {
			continue
		}
		if m.Prefix.IsValid() && !m.Prefix.Contains(dst) {
			continue
		}
		var iv Interval
		if m.Set != "" {
			s := rs.Set(m.Set)
			if s == nil {
				continue
			}
			var ok bool
			if iv, ok = find(s.Intervals, dst); !ok {
				continue
			}
		}
		if m.SourceNotIn != "" {
			s := rs.Set(m.SourceNotIn)
			if s == nil || (!p.Src.IsValid() && len(s.Intervals) > 0) {
				continue
			}
			if _, in := find(s.Intervals, p.Src.Unmap()); in {
				continue
			}
		}
		return Verdict{Masquerade: r.Masquerade, Rule: i, Comment: r.Comment, Interval: iv, SNAT: r.SNAT}
	}
	return Verdict{Rule: -1}
}
