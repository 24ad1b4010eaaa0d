package conntrack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// message builds a ctnetlink dump message of one UDP entry.
func message(orig, replySrc netip.Addr, status uint32) []byte {
	ip := func(src, dst netip.Addr) []byte {
		s, d := uint16(ctaIPv4Src), uint16(ctaIPv4Dst)
		if src.Is6() {
			s, d = ctaIPv6Src, ctaIPv6Dst
		}
		return appendAttr(appendAttr(nil, s, src.AsSlice()), d, dst.AsSlice())
	}
	tuple := func(src, dst netip.Addr) []byte {
		t := appendAttr(nil, ctaTupleIP|unix.NLA_F_NESTED, ip(src, dst))
		return appendAttr(t, ctaTupleProto|unix.NLA_F_NESTED, appendAttr(nil, ctaProtoNum, []byte{unix.IPPROTO_UDP}))
	}
	pod := netip.MustParseAddr("10.244.1.2")
	if orig.Is6() {
		pod = netip.MustParseAddr("fd00::2")
	}
	data := nfgen(unix.AF_INET)
	data = appendAttr(data, ctaTupleOrig|unix.NLA_F_NESTED, tuple(pod, orig))
	data = appendAttr(data, ctaTupleReply|unix.NLA_F_NESTED, tuple(replySrc, pod))
	data = appendAttr(data, ctaStatus, be32(status))
	data = appendAttr(data, ctaID, be32(7))
	h := make([]byte, nlmsgHeaderLen)
	binary.NativeEndian.PutUint32(h[0:4], uint32(nlmsgHeaderLen+len(data)))
	binary.NativeEndian.PutUint16(h[4:6], unix.NFNL_SUBSYS_CTNETLINK<<8)
	return append(h, data...)
}

func TestParseMessages(t *testing.T) {
	svc, backend := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.244.2.7")
	b := append(message(svc, backend, statusSrcNAT), message(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::1"), 0)...)
	var got []entry
	done, err := parseMessages(b, func(e *entry) { got = append(got, *e) })
	if err != nil || done || len(got) != 2 {
		t.Fatalf("parsed %d entries, done %v, err %v; want 2, false, nil", len(got), done, err)
	}
	if e := got[0]; e.proto != unix.IPPROTO_UDP || e.orig.dst.Addr() != svc || e.destination() != backend || !e.translated || len(e.id) != 4 {
		t.Errorf("DNATed, translated entry parsed as %+v", e)
	}
	if e := got[1]; e.destination() != netip.MustParseAddr("2001:db8::1") || e.translated {
		t.Errorf("IPv6 entry parsed as %+v", e)
	}
}

// TestParseMessagesTruncated: a short or garbled read never panics.
func TestParseMessagesTruncated(t *testing.T) {
	b := message(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.1"), 0)
	for n := range len(b) {
		_, _ = parseMessages(b[:n], func(*entry) {})
		c := append([]byte(nil), b...)
		c[n] ^= 0xff
		_, _ = parseMessages(c, func(*entry) {})
	}
}
