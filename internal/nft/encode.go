package nft

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// This file turns a Ruleset into google/nftables objects. Nothing here talks
// to the kernel.

// maxChunkBytes bounds the encoded size of one element list. google/nftables
// v0.3.0 puts a whole list in one netlink attribute with a 16-bit length and
// silently truncates anything longer (docs/ARCHITECTURE.md).
const maxChunkBytes = 60000

func tableObj(name string) *nftables.Table {
	return &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
}

func setObj(t *nftables.Table, s Set) *nftables.Set {
	return &nftables.Set{Table: t, Name: s.Name, KeyType: s.Family.info().key, Interval: true, Comment: s.Comment}
}

func chainObj(t *nftables.Table, name string) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     name,
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityRef(ChainPriority),
		Policy:   &policy,
	}
}

// ruleExprs encodes a rule. setIDs maps set names to the IDs AddSet gave them
// in the current batch; it may be nil for sets that already exist.
func ruleExprs(r Rule, setIDs map[string]uint32) []expr.Any {
	var e []expr.Any
	m := r.Match
	// In an inet table every address load needs its family guard; nft adds
	// it implicitly, the library does not.
	if m.Family != Any {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.Family.info().nfproto}})
	}
	switch {
	case m.Local:
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)})
	case m.Prefix.IsValid():
		addr := m.Prefix.Addr()
		fi := addrFamily(addr).info()
		e = append(e, fi.loadDaddr())
		if m.Prefix.Bits() < addr.BitLen() {
			hostBits := lastAddr(netip.PrefixFrom(fi.zero, m.Prefix.Bits()))
			e = append(e, &expr.Bitwise{
				SourceRegister: 1, DestRegister: 1, Len: uint32(fi.addrLen),
				Mask: invert(hostBits.AsSlice()), Xor: make([]byte, fi.addrLen),
			})
		}
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr.AsSlice()})
	case m.Set != "":
		e = append(e, m.Family.info().loadDaddr(), &expr.Lookup{SourceRegister: 1, SetName: m.Set, SetID: setIDs[m.Set]})
	case m.SourceNotIn != "":
		e = append(e, m.Family.info().loadSaddr(), &expr.Lookup{SourceRegister: 1, SetName: m.SourceNotIn, SetID: setIDs[m.SourceNotIn], Invert: true})
	}
	e = append(e, &expr.Counter{})
	switch {
	case !r.Masquerade:
		e = append(e, &expr.Verdict{Kind: expr.VerdictReturn})
	case r.SNAT.IsValid():
		e = append(e,
			&expr.Immediate{Register: 1, Data: r.SNAT.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(addrFamily(r.SNAT).info().nfproto), RegAddrMin: 1, FullyRandom: r.FullyRandom})
	default:
		e = append(e, &expr.Masq{FullyRandom: r.FullyRandom})
	}
	return e
}

func invert(b []byte) []byte {
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

func userData(comment string) []byte {
	if comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, comment)
}

// elementBytes is the encoded size of an interval's start and end elements.
func elementBytes(iv Interval) int {
	n := 12 + addrFamily(iv.First).info().addrLen // nested item and key attribute headers, then the address
	if !isMax(iv.Last) {
		n += n + 8 // end element: one more key and the flags attribute
	}
	return n
}
