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
// silently truncates anything longer (NFTABLES-NOTES.md).
const maxChunkBytes = 60000

func tableObj(name string) *nftables.Table {
	return &nftables.Table{Name: name, Family: nftables.TableFamilyINet}
}

func setObj(t *nftables.Table, s Set) *nftables.Set {
	key := nftables.TypeIPAddr
	if s.Family == IPv6 {
		key = nftables.TypeIP6Addr
	}
	return &nftables.Set{Table: t, Name: s.Name, KeyType: key, Interval: true, Comment: s.Comment}
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
		proto := byte(unix.NFPROTO_IPV4)
		if m.Family == IPv6 {
			proto = unix.NFPROTO_IPV6
		}
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	}
	switch {
	case m.Local:
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)})
	case m.Prefix.IsValid():
		addr := m.Prefix.Addr()
		e = append(e, daddr(addr))
		if m.Prefix.Bits() < addr.BitLen() {
			hostBits := lastAddr(netip.PrefixFrom(addrZero(addr), m.Prefix.Bits()))
			e = append(e, &expr.Bitwise{
				SourceRegister: 1, DestRegister: 1, Len: uint32(addr.BitLen() / 8),
				Mask: invert(hostBits.AsSlice()), Xor: make([]byte, addr.BitLen()/8),
			})
		}
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr.AsSlice()})
	case m.Set != "":
		zero := netip.IPv4Unspecified()
		if m.Family == IPv6 {
			zero = netip.IPv6Unspecified()
		}
		e = append(e, daddr(zero), &expr.Lookup{SourceRegister: 1, SetName: m.Set, SetID: setIDs[m.Set]})
	case m.SourceNotIn != "":
		e = append(e, saddr(m.Family), &expr.Lookup{SourceRegister: 1, SetName: m.SourceNotIn, SetID: setIDs[m.SourceNotIn], Invert: true})
	}
	if m.L4Proto != 0 {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{m.L4Proto}})
	}
	if m.Modulus > 1 {
		e = append(e,
			&expr.Numgen{Register: 1, Modulus: m.Modulus, Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)})
	}
	e = append(e, &expr.Counter{})
	switch {
	case !r.Masquerade:
		e = append(e, &expr.Verdict{Kind: expr.VerdictReturn})
	case r.SNAT.IsValid():
		fam := uint32(unix.NFPROTO_IPV4)
		if r.SNAT.Is6() {
			fam = unix.NFPROTO_IPV6
		}
		e = append(e,
			&expr.Immediate{Register: 1, Data: r.SNAT.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: 1, FullyRandom: r.FullyRandom})
	case r.Ports.Min == r.Ports.Max && r.Ports.Min != 0:
		// A single port is a range without a maximum, as nft encodes it.
		e = append(e,
			&expr.Immediate{Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.Ports.Min)},
			&expr.Masq{ToPorts: true, RegProtoMin: 1})
	case r.Ports != (PortRange{}):
		e = append(e,
			&expr.Immediate{Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.Ports.Min)},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.Ports.Max)},
			&expr.Masq{ToPorts: true, RegProtoMin: 1, RegProtoMax: 2})
	default:
		e = append(e, &expr.Masq{FullyRandom: r.FullyRandom})
	}
	return e
}

// saddr loads the source address of a packet of family f.
func saddr(f Family) *expr.Payload {
	if f == IPv4 {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
	}
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}
}

// daddr loads the destination address of a packet of addr's family.
func daddr(addr netip.Addr) *expr.Payload {
	if addr.Is4() {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
	}
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}
}

func addrZero(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
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
	n := 16 // nested item + key attribute + value
	if iv.First.Is6() {
		n = 28
	}
	if !isMax(iv.Last) {
		n += n + 8 // end element: one more key and the flags attribute
	}
	return n
}
