package nft

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// describeRule renders a rule read from the kernel in nft's words, so that
// `masqd diff` can name a rule that is not masqd's. It knows the
// expressions masqd writes, for which it prints what Rule.String does, and
// the common ones around them; anything else it names by type.
func describeRule(r *nftables.Rule) string {
	d := describer{loads: map[uint32]load{}}
	for _, e := range r.Exprs {
		d.expr(e)
	}
	if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && c != "" {
		d.parts = append(d.parts, fmt.Sprintf("comment %q", c))
	}
	return strings.Join(d.parts, " ")
}

// load is what an expression put into a register.
type load struct {
	what    string // "ip daddr", "meta l4proto", ...
	addrLen int    // an address of this many bytes (or its leading bytes)
	bits    int    // a prefix length from a bitwise mask; -1 for none
	data    []byte // an immediate value
}

type describer struct {
	parts []string
	loads map[uint32]load
	// nfproto is a pending `meta nfproto` match, dropped when an address
	// load of the same family follows: nft implies it there.
	nfproto string
}

func (d *describer) add(s string) {
	if d.nfproto != "" {
		d.parts = append(d.parts, d.nfproto)
		d.nfproto = ""
	}
	d.parts = append(d.parts, s)
}

// expr adds what e loads to the registers, or the words of what it tests
// or does to the rule's text.
func (d *describer) expr(e expr.Any) {
	switch e := e.(type) {
	case *expr.Meta:
		d.loads[e.Register] = metaLoad(e)
	case *expr.Payload:
		l := payloadLoad(e)
		d.loads[e.DestRegister] = l
		if l.addrLen > 0 && d.nfproto == "meta nfproto "+familyOfLen(l.addrLen) {
			d.nfproto = ""
		}
	case *expr.Fib:
		d.loads[e.Register] = fibLoad(e)
	case *expr.Numgen:
		kind := "inc"
		if e.Type == unix.NFT_NG_RANDOM {
			kind = "random"
		}
		d.loads[e.Register] = load{what: fmt.Sprintf("numgen %s mod %d", kind, e.Modulus), bits: -1}
	case *expr.Bitwise:
		d.loads[e.DestRegister] = d.masked(e)
	case *expr.Immediate:
		d.loads[e.Register] = load{data: e.Data, bits: -1}
	case *expr.Cmp:
		d.cmp(e)
	case *expr.Lookup:
		op := ""
		if e.Invert {
			op = "!= "
		}
		d.add(d.loads[e.SourceRegister].what + " " + op + "@" + e.SetName)
	case *expr.Counter:
		d.add("counter")
	case *expr.Verdict:
		d.add(verdictText(e))
	case *expr.Masq:
		d.add(d.masqText(e))
	case *expr.NAT:
		d.add(d.natText(e))
	default:
		d.add(strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr.")))
	}
}

func metaLoad(e *expr.Meta) load {
	name := map[expr.MetaKey]string{expr.MetaKeyNFPROTO: "meta nfproto", expr.MetaKeyL4PROTO: "meta l4proto",
		expr.MetaKeyMARK: "meta mark", expr.MetaKeyOIFNAME: "oifname", expr.MetaKeyIIFNAME: "iifname"}[e.Key]
	if name == "" {
		name = fmt.Sprintf("meta key %d", e.Key)
	}
	return load{what: name, bits: -1}
}

func fibLoad(e *expr.Fib) load {
	what := "fib"
	if e.FlagDADDR {
		what += " daddr"
	} else if e.FlagSADDR {
		what += " saddr"
	}
	if e.ResultADDRTYPE {
		what += " type"
	} else if e.ResultOIF {
		what += " oif"
	}
	return load{what: what, bits: -1}
}

// masked is an address load with a bitwise mask applied: a prefix of the
// mask's length.
func (d *describer) masked(e *expr.Bitwise) load {
	l := d.loads[e.SourceRegister]
	if l.addrLen > 0 && len(e.Mask) > 0 {
		ones := 0
		for _, b := range e.Mask {
			ones += bits.OnesCount8(b)
		}
		l.bits = ones
	}
	return l
}

// cmp adds a comparison, or holds back `meta nfproto` until it knows
// whether an address match implies it.
func (d *describer) cmp(e *expr.Cmp) {
	l := d.loads[e.Register]
	op := map[expr.CmpOp]string{expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ",
		expr.CmpOpLte: "<= ", expr.CmpOpGt: "> ", expr.CmpOpGte: ">= "}[e.Op]
	text := op + cmpValue(l, e.Data)
	if l.what == "meta nfproto" && e.Op == expr.CmpOpEq {
		d.nfproto = "meta nfproto " + text
		return
	}
	d.add(l.what + " " + text)
}

func (d *describer) masqText(e *expr.Masq) string {
	s := "masquerade"
	if e.ToPorts {
		s += " to :" + portsText(d.loads[e.RegProtoMin].data, d.loads[e.RegProtoMax].data, e.RegProtoMax != 0)
	}
	if e.FullyRandom {
		s += " fully-random"
	}
	return s
}

func (d *describer) natText(e *expr.NAT) string {
	s := map[expr.NATType]string{expr.NATTypeSourceNAT: "snat", expr.NATTypeDestNAT: "dnat"}[e.Type]
	fam := "ip"
	if e.Family == unix.NFPROTO_IPV6 {
		fam = "ip6"
	}
	if a, ok := netip.AddrFromSlice(d.loads[e.RegAddrMin].data); ok && e.RegAddrMin != 0 {
		s += " " + fam + " to " + a.String()
	}
	if e.FullyRandom {
		s += " fully-random"
	}
	return s
}

func familyOfLen(n int) string {
	if n == 16 {
		return "ipv6"
	}
	return "ipv4"
}

// payloadLoad names a payload load: the address fields masqd matches (nft
// loads only a prefix's leading bytes when its length is a multiple of 8),
// and raw offsets otherwise.
func payloadLoad(p *expr.Payload) load {
	if p.Base == expr.PayloadBaseNetworkHeader {
		for _, f := range []struct {
			what        string
			off, length uint32
		}{{"ip saddr", 12, 4}, {"ip daddr", 16, 4}, {"ip6 saddr", 8, 16}, {"ip6 daddr", 24, 16}} {
			if p.Offset == f.off && p.Len > 0 && p.Len <= f.length {
				l := load{what: f.what, addrLen: int(f.length), bits: -1}
				if p.Len < f.length {
					l.bits = int(p.Len) * 8
				}
				return l
			}
		}
	}
	base := map[expr.PayloadBase]string{expr.PayloadBaseLLHeader: "ll", expr.PayloadBaseNetworkHeader: "nh", expr.PayloadBaseTransportHeader: "th"}[p.Base]
	return load{what: fmt.Sprintf("@%s,%d,%d", base, p.Offset*8, p.Len*8), bits: -1}
}

// cmpValue prints the value a register is compared with, as nft would for
// what the register holds.
func cmpValue(l load, data []byte) string {
	switch {
	case l.addrLen > 0 && len(data) <= l.addrLen:
		full := make([]byte, l.addrLen)
		copy(full, data)
		a, _ := netip.AddrFromSlice(full)
		if l.bits >= 0 && l.bits < a.BitLen() {
			return netip.PrefixFrom(a, l.bits).String()
		}
		return a.String()
	case l.what == "meta nfproto" && len(data) == 1:
		switch data[0] {
		case unix.NFPROTO_IPV4:
			return "ipv4"
		case unix.NFPROTO_IPV6:
			return "ipv6"
		}
	case l.what == "meta l4proto" && len(data) == 1:
		return protoName(data[0])
	case l.what == "fib daddr type" && len(data) == 4 && binary.NativeEndian.Uint32(data) == unix.RTN_LOCAL:
		return "local"
	case strings.HasPrefix(l.what, "numgen") && len(data) == 4:
		return fmt.Sprint(binary.BigEndian.Uint32(data))
	}
	return "0x" + hex.EncodeToString(data)
}

func portsText(min, max []byte, hasMax bool) string {
	if len(min) != 2 {
		return "?"
	}
	s := fmt.Sprint(binary.BigEndian.Uint16(min))
	if hasMax && len(max) == 2 && !bytes.Equal(min, max) {
		s += fmt.Sprintf("-%d", binary.BigEndian.Uint16(max))
	}
	return s
}

func verdictText(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

// protoName is nft's word for an IP protocol number.
func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	}
	return strconv.Itoa(int(p))
}
