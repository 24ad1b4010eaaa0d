package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Monitor listens to the kernel's nftables events until ctx ends and calls
// onChange whenever a transaction touched table, masqd's own commits
// included (the following Sync sees those in its cache and does nothing).
//
// While it runs, Sync can trust its cache even when other tables' commits
// moved the generation id: it dumps only when a transaction after its own
// last commit touched the table. When the event socket overflows, Monitor
// treats the table as touched and keeps listening. It returns an error when
// it cannot listen at all; then Sync falls back to the generation id alone.
//
// Monitor runs on a goroutine of its own beside Sync and the other calls:
// what it learns reaches Sync through atomics. Run at most one per Conn.
func (c *Conn) Monitor(ctx context.Context, table string, onChange func()) error {
	nl, err := c.listen()
	if err != nil {
		return err
	}
	defer nl.Close()
	defer c.monitoring.Store(false)
	c.reportSeen()

	stop := context.AfterFunc(ctx, func() { nl.Close() })
	defer stop()

	touched := false
	for {
		msgs, err := nl.Receive()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, unix.ENOBUFS):
			// Events were lost: anything may have changed.
			c.touch(math.MaxUint32)
			onChange()
			continue
		case err != nil:
			return fmt.Errorf("monitor: receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
				continue
			}
			switch uint16(m.Header.Type & 0xff) {
			case unix.NFT_MSG_NEWGEN:
				// A transaction's events end with its generation id.
				id, ok := attrUint32(m.Data[4:], unix.NFTA_GEN_ID)
				if !ok {
					continue
				}
				if touched {
					c.touch(id)
					onChange()
				}
				c.seenGen.Store(id)
				c.reportSeen()
				touched = false
			case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE,
				unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELCHAIN,
				unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELRULE,
				unix.NFT_MSG_NEWSET, unix.NFT_MSG_DELSET,
				unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
				// Attribute 1 of all of these names the table.
				if !touched && attrString(m.Data[4:], 1) == table && familyOf(m.Data) == unix.NFPROTO_INET {
					touched = true
				}
			}
		}
	}
}

// listen opens the event socket and marks the Conn as monitored from the
// generation now current. It holds the Conn open only while it dials: the
// socket then lives on its own.
func (c *Conn) listen() (*netlink.Conn, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: c.nsFd()})
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if err := nl.SetReadBuffer(socketBuffer); err != nil {
		nl.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if err := nl.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		nl.Close()
		return nil, fmt.Errorf("monitor: join nftables group: %w", err)
	}
	// Events from here on are seen: the cache may rely on them from the
	// generation now current.
	gen, err := c.genID()
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	c.seenGen.Store(gen)
	c.monitoring.Store(true)
	return nl, nil
}

func (c *Conn) reportSeen() {
	if c.seen != nil {
		c.seen(c.seenGen.Load())
	}
}

// touch records that the transaction with generation id gen changed the
// table.
func (c *Conn) touch(gen uint32) {
	for {
		old := c.lastTouch.Load()
		if gen <= old || c.lastTouch.CompareAndSwap(old, gen) {
			return
		}
	}
}

func familyOf(nfgenmsg []byte) uint8 { return nfgenmsg[0] }

func attrUint32(b []byte, typ uint16) (uint32, bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return 0, false
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == typ {
			return ad.Uint32(), true
		}
	}
	return 0, false
}

func attrString(b []byte, typ uint16) string {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == typ {
			return ad.String()
		}
	}
	return ""
}
