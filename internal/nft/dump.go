package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// dumpBuffer is the buffer a set's elements are read into. The kernel sizes
// each dump message to the largest receive the reader has made (at most
// about 32 KiB) and walks the set from its first element again for every
// message. google/nftables reads through mdlayher/netlink, which receives
// into a buffer of the size it peeked, so after the first page-sized message
// every message stays page-sized: a 100,000-interval set came in ~2,150
// messages and its dump cost seconds, growing with the square of the set.
// Receiving into 64 KiB lets the kernel fill messages to its cap, eight
// times fewer walks.
const dumpBuffer = 64 << 10

// element is a set element as dumped: a start, or the end (exclusive) of an
// interval.
type element struct {
	addr netip.Addr
	end  bool
	// bad marks a key that is no IPv4 or IPv6 address.
	bad bool
}

// dumpStats describes how a dump arrived, for tests that keep it linear.
type dumpStats struct {
	Messages   int
	MaxMessage int // bytes, netlink header included
}

// dumpSet reads the elements of set s in the network namespace nsFd (0: the
// caller's) into intervals.
//
// Even in 32 KiB messages the kernel's walks make a dump grow with the
// square of the set (measured on kernel 6.18: 0.4 s of kernel time at
// 100,000 intervals, 1.6 s at 200,000, 8.5 s at 400,000). Flushing and
// refilling the set in one batch instead, without reading it, is no way
// out: inserting keys that the same transaction deactivated grew as fast
// and cost more (2.0 s and 9.3 s), with twice the memory.
func dumpSet(nsFd int, s *nftables.Set) (*observedSet, dumpStats, error) {
	var p elementStream
	st, err := dumpElements(nsFd, s, p.add)
	if err != nil {
		return nil, st, fmt.Errorf("list elements of set %s: %w", s.Name, err)
	}
	return p.result(), st, nil
}

// dumpElements dumps set s and calls fn with the elements of each message.
// The slice is reused for the next message.
func dumpElements(nsFd int, s *nftables.Set, fn func([]element)) (dumpStats, error) {
	var st dumpStats
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd, MessageBufferSize: dumpBuffer})
	if err != nil {
		return st, err
	}
	defer nl.Close()
	// Messages up to the kernel's cap queue up while the reader parses.
	if err := nl.SetReadBuffer(4 * dumpBuffer); err != nil {
		return st, err
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(s.Table.Name + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(s.Name + "\x00")},
	})
	if err != nil {
		return st, err
	}
	req, err := nl.Send(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{byte(s.Table.Family), unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return st, err
	}
	const newSetElem = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM
	var elems []element
	for m, err := range nl.ReceiveIter() {
		if err != nil {
			return st, err
		}
		if m.Header.Sequence != req.Header.Sequence || m.Header.Type != newSetElem {
			continue
		}
		st.Messages++
		st.MaxMessage = max(st.MaxMessage, int(m.Header.Length))
		if elems, err = appendElements(elems[:0], m.Data); err != nil {
			return st, err
		}
		fn(elems)
	}
	return st, nil
}

// appendElements decodes one NEWSETELEM message (its nfgenmsg header and
// attributes) and appends its elements to elems. It decodes in place: a
// large set has hundreds of thousands of elements.
func appendElements(elems []element, msg []byte) ([]element, error) {
	if len(msg) < 4 {
		return elems, errors.New("set element message shorter than its header")
	}
	err := eachAttr(msg[4:], func(typ uint16, list []byte) error {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return nil
		}
		return eachAttr(list, func(typ uint16, el []byte) error {
			if typ != unix.NFTA_LIST_ELEM {
				return nil
			}
			var e element
			var key []byte
			err := eachAttr(el, func(typ uint16, b []byte) error {
				switch typ {
				case unix.NFTA_SET_ELEM_KEY:
					return eachAttr(b, func(typ uint16, v []byte) error {
						if typ == unix.NFTA_DATA_VALUE {
							key = v
						}
						return nil
					})
				case unix.NFTA_SET_ELEM_FLAGS:
					if len(b) != 4 {
						return errors.New("set element flags are not 4 bytes")
					}
					e.end = binary.BigEndian.Uint32(b)&unix.NFT_SET_ELEM_INTERVAL_END != 0
				}
				return nil
			})
			if err != nil {
				return err
			}
			a, ok := netip.AddrFromSlice(key)
			e.addr, e.bad = a, !ok
			elems = append(elems, e)
			return nil
		})
	})
	return elems, err
}

// eachAttr calls fn for every netlink attribute in b, with its type (the
// nested and byte-order flags cleared) and payload.
func eachAttr(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofNlAttr || l > len(b) {
			return fmt.Errorf("netlink attribute of type %d: length %d does not fit %d bytes", typ, l, len(b))
		}
		if err := fn(typ, b[unix.SizeofNlAttr:l]); err != nil {
			return err
		}
		b = b[min(len(b), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return nil
}

// elementOrder sorts elements by address, an end before a start at the
// same address (it closes the previous interval first).
func elementOrder(a, b element) int {
	if c := a.addr.Compare(b.addr); c != 0 {
		return c
	}
	switch {
	case a.end && !b.end:
		return -1
	case !a.end && b.end:
		return 1
	}
	return 0
}

// parseElements turns the kernel's start and end elements into intervals.
// The kernel returns them in descending order, an end before its start.
func parseElements(elems []element) *observedSet {
	slices.Reverse(elems)
	if !slices.IsSortedFunc(elems, elementOrder) {
		slices.SortFunc(elems, elementOrder)
	}
	return parseSorted(elems)
}

// parseSorted pairs elements sorted by elementOrder into intervals.
func parseSorted(elems []element) *observedSet {
	o := &observedSet{intervals: make([]Interval, 0, len(elems)/2)}
	var open netip.Addr // valid while an interval is open
	for _, e := range elems {
		switch {
		case e.bad:
			o.dirty = true
		case !e.end && !open.IsValid():
			open = e.addr
		case !e.end:
			o.dirty = true
			open = e.addr
		case !open.IsValid():
			o.dirty = true
		default:
			o.intervals = append(o.intervals, Interval{First: open, Last: e.addr.Prev()})
			open = netip.Addr{}
		}
	}
	if open.IsValid() {
		o.intervals = append(o.intervals, Interval{First: open, Last: addrFamily(open).info().max})
	}
	return o
}

// elementStream pairs elements into intervals as a dump delivers them, so
// that a large set is never held twice (as elements and as intervals). The
// kernel dumps an interval set in descending order, each end (exclusive)
// just before its start, the topmost interval without an end when it runs
// to the last address. Elements in any other order, or that form no clean
// intervals, are collected and parsed by parseElements instead.
type elementStream struct {
	desc []Interval // descending
	end  netip.Addr // an end waiting for its start; invalid when none
	rest []element  // non-nil once the order was not the kernel's usual
}

func (p *elementStream) add(elems []element) {
	for _, e := range elems {
		if p.rest == nil && !p.next(e) {
			p.fallBack()
		}
		if p.rest != nil {
			p.rest = append(p.rest, e)
		}
	}
}

// next takes e in the fast path and reports whether it fit there.
func (p *elementStream) next(e element) bool {
	switch {
	case e.bad:
		return false
	case p.end.IsValid():
		if e.end || e.addr.Compare(p.end) >= 0 {
			return false
		}
		if len(p.desc) == cap(p.desc) {
			// Double: append's growth of large slices (1.25x) left
			// five times the final size behind as garbage.
			p.desc = slices.Grow(p.desc, max(1024, len(p.desc)))
		}
		p.desc = append(p.desc, Interval{First: e.addr, Last: p.end.Prev()})
		p.end = netip.Addr{}
	case e.end:
		if n := len(p.desc); n > 0 && e.addr.Compare(p.desc[n-1].First) >= 0 {
			return false
		}
		p.end = e.addr
	case len(p.desc) == 0:
		// The topmost interval, open to the last address.
		p.desc = append(p.desc, Interval{First: e.addr, Last: addrFamily(e.addr).info().max})
	default:
		return false
	}
	return true
}

// fallBack turns what the fast path took back into elements.
func (p *elementStream) fallBack() {
	p.rest = make([]element, 0, 2*len(p.desc)+1)
	for _, iv := range p.desc {
		if end := iv.Last.Next(); end.IsValid() {
			p.rest = append(p.rest, element{addr: end, end: true})
		}
		p.rest = append(p.rest, element{addr: iv.First})
	}
	if p.end.IsValid() {
		p.rest = append(p.rest, element{addr: p.end, end: true})
	}
	p.desc, p.end = nil, netip.Addr{}
}

func (p *elementStream) result() *observedSet {
	if p.end.IsValid() {
		// An end without its start: a dangling end.
		p.fallBack()
	}
	if p.rest != nil {
		return parseElements(p.rest)
	}
	slices.Reverse(p.desc)
	return &observedSet{intervals: p.desc}
}
