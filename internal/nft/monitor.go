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
// included (the following Sync sees those in its cache and does nothing),
// and once when it starts, for what committed before it listened.
//
// While it runs, Sync can trust its cache even when other tables' commits
// moved the generation id: it dumps only when a transaction after its own
// last commit touched the table in more ways than adding and deleting a
// few elements. Those it keeps, and Sync replays them on its cache. When
// the event socket overflows, Monitor treats the table as touched and keeps
// listening. It returns an error when it cannot listen at all; then Sync
// falls back to the generation id alone.
//
// Monitor runs on a goroutine of its own beside Sync and the other calls:
// what it learns reaches Sync through atomics and the delta list, which
// has its own lock. Run at most one per Conn.
func (c *Conn) Monitor(ctx context.Context, table string, onChange func()) error {
	nl, err := c.listen()
	if err != nil {
		return err
	}
	defer nl.Close()
	defer func() {
		c.monMu.Lock()
		c.mon = nil
		c.monMu.Unlock()
	}()
	defer c.monitoring.Store(false)
	c.reportSeen()
	// Have the caller check the gap now rather than at its next resync;
	// when nothing committed, that check is the cheap cached one.
	onChange()

	stop := context.AfterFunc(ctx, func() { nl.Close() })
	defer stop()

	// The transaction being read: whether it touched the table, and how.
	var tx *txDelta
	for {
		msgs, err := nl.Receive()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, unix.ENOBUFS):
			// Events were lost: anything may have changed.
			c.record(&txDelta{gen: math.MaxUint32, opaque: true})
			tx = nil
			onChange()
			continue
		case err != nil:
			return fmt.Errorf("monitor: receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
				continue
			}
			typ := uint16(m.Header.Type & 0xff)
			switch typ {
			case unix.NFT_MSG_NEWGEN:
				// A transaction's events end with its generation id.
				id, ok := attrUint32(m.Data[4:], unix.NFTA_GEN_ID)
				if !ok {
					continue
				}
				if tx != nil {
					tx.gen = id
					c.record(tx)
					onChange()
				}
				c.seenGen.Store(id)
				c.reportSeen()
				tx = nil
			case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE,
				unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELCHAIN,
				unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELRULE,
				unix.NFT_MSG_NEWSET, unix.NFT_MSG_DELSET,
				unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
				// Attribute 1 of all of these names the table.
				if attrString(m.Data[4:], 1) != table || familyOf(m.Data) != unix.NFPROTO_INET {
					continue
				}
				if tx == nil {
					tx = &txDelta{}
				}
				if typ == unix.NFT_MSG_NEWSETELEM || typ == unix.NFT_MSG_DELSETELEM {
					// Attribute 2 names the set.
					tx.addElements(attrString(m.Data[4:], 2), m.Data, typ == unix.NFT_MSG_DELSETELEM)
				} else {
					tx.markOpaque()
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
	// generation now current. What committed between masqd's last sync
	// and now was not seen: count it as a touch, so that a sync whose
	// cache predates it reads the table back.
	gen, err := c.genID()
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	c.record(&txDelta{gen: gen, opaque: true})
	c.seenGen.Store(gen)
	c.monMu.Lock()
	c.mon = nl
	c.monMu.Unlock()
	c.monitoring.Store(true)
	return nl, nil
}

func (c *Conn) reportSeen() {
	if c.seen != nil {
		c.seen(c.seenGen.Load())
	}
}

// quietAbove is the number of elements in one of masqd's own batches above
// which Sync stops the monitor listening while it commits. With a listener
// the kernel builds an event for every element in the commit, and the
// monitor reads each one: a 100,000-element change took several times as
// long with the monitor running. A batch this large is past what the
// monitor would keep for replay anyway.
const quietAbove = maxReplay

// quiet stops the monitor's subscription for one of masqd's own large
// batches and returns the function that resumes it. Sync must read the
// generation id after resuming: if only its own commit happened since its
// first read, nothing foreign can have committed while no one listened.
func (c *Conn) quiet(res Result) (resume func()) {
	n := 0
	for _, s := range res.Sets {
		n += 2 * (s.Added + s.Removed)
	}
	c.monMu.Lock()
	nl := c.mon
	c.monMu.Unlock()
	if n <= quietAbove || nl == nil || nl.LeaveGroup(unix.NFNLGRP_NFTABLES) != nil {
		return func() {}
	}
	return func() {
		if err := nl.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
			// Without the subscription the monitor cannot vouch for
			// anything any more.
			c.monitoring.Store(false)
		}
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
