package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ctnetlink message types and attributes (linux/netfilter/nfnetlink_conntrack.h).
const (
	msgGet    = 1
	msgDelete = 2

	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaStatus     = 3
	ctaID         = 12
	ctaZone       = 18
	ctaStatusMask = 26

	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum     = 1
	ctaProtoSrcPort = 2
	ctaProtoDstPort = 3

	// statusSrcNAT is IPS_SRC_NAT: the entry's source was translated.
	statusSrcNAT = 1 << 4
)

// entry is what Reconcile needs of one conntrack entry. The raw attributes
// are sent back as they came to delete exactly this entry: the original
// tuple, its zone, and its ID, so that an entry that was replaced since the
// dump is not deleted.
type entry struct {
	proto       uint8
	orig, reply tuple
	translated  bool
	raw         []byte // CTA_TUPLE_ORIG payload
	zone        []byte // CTA_ZONE payload, or nil
	id          []byte // CTA_ID payload
}

// tuple is one direction of an entry.
type tuple struct {
	src, dst netip.AddrPort
}

// destination is the address masqd's chain matched for the entry: the
// original destination, or the address it was DNATed to before
// postrouting (a Service's backend), which is the reply's source.
func (e *entry) destination() netip.Addr {
	if a := e.reply.src.Addr(); a.IsValid() {
		return a
	}
	return e.orig.dst.Addr()
}

// dumpRead is the size of one read of a dump. The kernel sizes the
// messages of a dump after the largest read so far (up to 32 KiB), so a
// large read means fewer messages and fewer system calls; ti-mo/conntrack
// reads page-sized.
const dumpRead = 64 << 10

// nlmsgHeaderLen and nfgenLen are the fixed headers of a ctnetlink message.
const (
	nlmsgHeaderLen = 16
	nfgenLen       = 4
)

// dump reads the entries of one family, those with (status & statusMask)
// == status when statusMask is not zero, and calls fn for each. fn must
// not keep the entry's byte slices past its return unless it copies them.
func dump(c *netlink.Conn, family uint8, status, statusMask uint32, fn func(*entry)) error {
	var attrs []byte
	if statusMask != 0 {
		attrs = appendAttr(attrs, ctaStatus, be32(status))
		attrs = appendAttr(attrs, ctaStatusMask, be32(statusMask))
	}
	req := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | msgGet), Flags: netlink.Request | netlink.Dump},
		Data:   append(nfgen(family), attrs...),
	}
	if _, err := c.Send(req); err != nil {
		return fmt.Errorf("send dump request: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, dumpRead)
	for {
		n, err, rerr := recv(rc, buf)
		if err != nil {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("read dump: %w", rerr)
		}
		done, err := parseMessages(buf[:n], fn)
		if err != nil || done {
			return err
		}
	}
}

// openNetNS opens the network namespace at path, or returns nil, the
// caller's namespace, when path is empty.
func openNetNS(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	return f, nil
}

// dial opens a ctnetlink socket in ns (the caller's namespace when nil)
// with a receive buffer of size bytes; what names the socket in errors.
func dial(ns *os.File, size int, what string) (*netlink.Conn, error) {
	cfg := &netlink.Config{}
	if ns != nil {
		cfg.NetNS = int(ns.Fd())
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("talk to conntrack over netlink: %w", err)
	}
	if err := conn.SetReadBuffer(size); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s buffer: %w", what, err)
	}
	return conn, nil
}

// recv reads one datagram into buf through rc, for parsing in place:
// mdlayher/netlink's Receive builds a netlink.Message for every message of
// it, which a dump of 10,000 entries or a busy event log pays for. err is the
// socket's (its deadline passed, or it was closed); rerr is the read's.
func recv(rc syscall.RawConn, buf []byte) (n int, err, rerr error) {
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	return n, err, rerr
}

// errMalformed is a netlink message whose length does not fit its read.
var errMalformed = errors.New("malformed netlink message")

// eachMessage calls fn with the type and payload (what follows the netlink
// header) of each netlink message of one read, until fn returns false.
func eachMessage(b []byte, fn func(typ uint16, payload []byte) bool) error {
	for len(b) >= nlmsgHeaderLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		typ := binary.NativeEndian.Uint16(b[4:6])
		if l < nlmsgHeaderLen || l > len(b) {
			return errMalformed
		}
		if !fn(typ, b[nlmsgHeaderLen:l]) {
			return nil
		}
		b = b[min(align(l), len(b)):]
	}
	return nil
}

// parseMessages walks the netlink messages of one read of a dump. It
// reports done at the dump's end.
func parseMessages(b []byte, fn func(*entry)) (done bool, err error) {
	werr := eachMessage(b, func(typ uint16, msg []byte) bool {
		switch typ {
		case unix.NLMSG_DONE:
			done = true
			return false
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(msg[0:4])); errno != 0 {
					err = fmt.Errorf("read dump: %w", unix.Errno(-errno))
					return false
				}
			}
			done = true
			return false
		}
		if len(msg) >= nfgenLen {
			var e entry
			parseEntry(msg[nfgenLen:], &e)
			if e.raw != nil {
				fn(&e)
			}
		}
		return true
	})
	if werr != nil {
		return false, fmt.Errorf("read dump: %w", werr)
	}
	return done, err
}

func parseEntry(b []byte, e *entry) {
	eachAttr(b, func(typ uint16, v []byte) {
		switch typ {
		case ctaTupleOrig:
			e.raw = v
			e.orig, e.proto = parseTuple(v)
		case ctaTupleReply:
			e.reply, _ = parseTuple(v)
		case ctaStatus:
			if len(v) == 4 {
				e.translated = binary.BigEndian.Uint32(v)&statusSrcNAT != 0
			}
		case ctaID:
			e.id = v
		case ctaZone:
			e.zone = v
		}
	})
}

// parseTuple returns a tuple's addresses and ports (zero for protocols
// without ports), and its protocol.
func parseTuple(b []byte) (t tuple, proto uint8) {
	var src, dst netip.Addr
	var sport, dport uint16
	eachAttr(b, func(typ uint16, v []byte) {
		switch typ {
		case ctaTupleIP:
			eachAttr(v, func(typ uint16, a []byte) {
				addr, ok := netip.AddrFromSlice(a)
				if !ok {
					return
				}
				switch typ {
				case ctaIPv4Dst, ctaIPv6Dst:
					dst = addr.Unmap()
				case ctaIPv4Src, ctaIPv6Src:
					src = addr.Unmap()
				}
			})
		case ctaTupleProto:
			eachAttr(v, func(typ uint16, a []byte) {
				switch {
				case typ == ctaProtoNum && len(a) == 1:
					proto = a[0]
				case typ == ctaProtoSrcPort && len(a) == 2:
					sport = binary.BigEndian.Uint16(a)
				case typ == ctaProtoDstPort && len(a) == 2:
					dport = binary.BigEndian.Uint16(a)
				}
			})
		}
	})
	return tuple{src: netip.AddrPortFrom(src, sport), dst: netip.AddrPortFrom(dst, dport)}, proto
}

// eachAttr calls fn for each netlink attribute in b, with its type less
// the nested and byte-order flags.
func eachAttr(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return
		}
		fn(typ, b[4:l])
		b = b[min(align(l), len(b)):]
	}
}

// del deletes one entry: by its original tuple, in its zone, if its ID is
// still the one dumped.
func del(c *netlink.Conn, family uint8, e *entry) error {
	data := nfgen(family)
	data = appendAttr(data, ctaTupleOrig|unix.NLA_F_NESTED, e.raw)
	if e.zone != nil {
		data = appendAttr(data, ctaZone, e.zone)
	}
	if e.id != nil {
		data = appendAttr(data, ctaID, e.id)
	}
	_, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_CTNETLINK<<8 | msgDelete), Flags: netlink.Request | netlink.Acknowledge},
		Data:   data,
	})
	return err
}

func nfgen(family uint8) []byte {
	return []byte{family, unix.NFNETLINK_V0, 0, 0}
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(h[2:4], typ)
	b = append(b, h[:]...)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func be32(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

func align(n int) int { return (n + 3) &^ 3 }
