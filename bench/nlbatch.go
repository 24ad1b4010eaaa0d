package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// addForeignInterval adds the interval [first, end) to set in table (inet)
// of ns with one raw nftables netlink batch, as another agent on the node
// would, and returns when the kernel acknowledged it: the time just before
// the send is when the repair clock starts. nft itself cannot be used for
// this: for an interval set it first reads the whole set back, which at
// 100,000 elements takes longer than the repair being measured.
func addForeignInterval(ns *netns, table, set string, first, end netip.Addr) (sent time.Time, err error) {
	var fd int
	if err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		return err
	}); err != nil {
		return time.Time{}, fmt.Errorf("netlink socket in %s: %w", ns.name, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return time.Time{}, fmt.Errorf("bind netlink socket: %w", err)
	}
	key := func(a netip.Addr) []byte {
		return nlAttr(unix.NFTA_SET_ELEM_KEY|unix.NLA_F_NESTED, nlAttr(unix.NFTA_DATA_VALUE, a.AsSlice()))
	}
	flags := binary.BigEndian.AppendUint32(nil, unix.NFT_SET_ELEM_INTERVAL_END)
	elems := append(nlAttr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, key(first)),
		nlAttr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, append(key(end), nlAttr(unix.NFTA_SET_ELEM_FLAGS, flags)...))...)
	body := append(nlAttr(unix.NFTA_SET_ELEM_LIST_TABLE, append([]byte(table), 0)), nlAttr(unix.NFTA_SET_ELEM_LIST_SET, append([]byte(set), 0))...)
	body = append(body, nlAttr(unix.NFTA_SET_ELEM_LIST_ELEMENTS|unix.NLA_F_NESTED, elems)...)
	batch := nlMsg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, 1, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, nil)
	batch = append(batch, nlMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_ACK, 2, unix.NFPROTO_INET, 0, body)...)
	batch = append(batch, nlMsg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, 3, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, nil)...)
	sent = time.Now()
	if err := unix.Sendto(fd, batch, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return time.Time{}, fmt.Errorf("send batch: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return time.Time{}, fmt.Errorf("read ack: %w", err)
	}
	if n < unix.NLMSG_HDRLEN+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return time.Time{}, fmt.Errorf("unexpected answer to the batch (%d bytes)", n)
	}
	if errno := int32(binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN:])); errno != 0 {
		return time.Time{}, fmt.Errorf("add element %s-%s: %w", first, end, unix.Errno(-errno))
	}
	return sent, nil
}

// nlMsg is one netlink message with an nfgenmsg header.
func nlMsg(typ, flags uint16, seq uint32, family uint8, resID uint16, body []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+4, unix.NLMSG_HDRLEN+4+len(body))
	binary.NativeEndian.PutUint32(b, uint32(unix.NLMSG_HDRLEN+4+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b[unix.NLMSG_HDRLEN] = family
	b[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(b[unix.NLMSG_HDRLEN+2:], resID)
	return append(b, body...)
}

// nlAttr is one netlink attribute, padded to four bytes.
func nlAttr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
