package conntrack

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TranslationLog writes one JSON line for every source-NAT translation that
// starts or ends in a network namespace, from conntrack's events, as
// carrier-grade NAT logging does: who was behind a node address and port,
// and when. Events pass a bounded buffer; what cannot be kept is counted,
// never dropped silently. Its counters may be read at any time; Run is
// called once.
type TranslationLog struct {
	ns     *os.File
	w      io.Writer
	file   *os.File // what OpenTranslationLog opened; Run closes it
	buffer int

	// Lines counts the lines written, start and end.
	Starts, Ends atomic.Uint64
	// KernelOverflows counts the times the kernel could not queue events
	// for masqd (ENOBUFS on the event socket): an unknown number of
	// events were lost each time.
	KernelOverflows atomic.Uint64
	// BufferDrops counts events dropped because the writer fell behind by
	// more than the buffer.
	BufferDrops atomic.Uint64
}

// NewTranslationLog returns a log for the namespace at nsPath (the
// caller's when empty) that writes to w through a buffer of that many
// events.
func NewTranslationLog(nsPath string, w io.Writer, buffer int) (*TranslationLog, error) {
	ns, err := openNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	return &TranslationLog{w: w, buffer: max(buffer, 1), ns: ns}, nil
}

// OpenTranslationLog returns a log as NewTranslationLog does that appends
// to the file at path, created if missing, or writes to stdout when path
// is "-". Run closes the file.
func OpenTranslationLog(path string, stdout io.Writer, nsPath string, buffer int) (*TranslationLog, error) {
	if path == "-" {
		return NewTranslationLog(nsPath, stdout, buffer)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	l, err := NewTranslationLog(nsPath, f, buffer)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.file = f
	return l, nil
}

// eventBuffer is the event socket's receive buffer: bursts of connections
// queue here before the reader drains them.
const eventBuffer = 16 << 20

// logLine is one line of the translation log.
type logLine struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"` // start or end
	Proto string    `json:"proto"`
	Pod   string    `json:"pod"`
	Node  string    `json:"node"`
	Dst   string    `json:"dst"`
	// ID is conntrack's ID of the entry; a start and its end share it.
	ID uint32 `json:"id"`
}

// Run listens and writes until ctx ends, then releases the namespace
// handle and the file OpenTranslationLog opened. It returns nil then, or
// the error that stopped it.
func (l *TranslationLog) Run(ctx context.Context) error {
	if l.ns != nil {
		defer l.ns.Close()
	}
	if l.file != nil {
		defer l.file.Close()
	}
	conn, err := dial(l.ns, eventBuffer, "conntrack event socket")
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, g := range []uint32{unix.NFNLGRP_CONNTRACK_NEW, unix.NFNLGRP_CONNTRACK_DESTROY} {
		if err := conn.JoinGroup(g); err != nil {
			return fmt.Errorf("listen to conntrack events: %w", err)
		}
	}
	lines := make(chan logLine, l.buffer)
	written := make(chan error, 1)
	go func() { written <- l.write(lines) }()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	err = l.read(conn, lines)
	close(lines)
	werr := <-written
	if ctx.Err() != nil {
		return werr
	}
	return errors.Join(err, werr)
}

// read turns events into lines until the socket's deadline passes.
func (l *TranslationLog) read(conn *netlink.Conn, lines chan<- logLine) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, dumpRead)
	for {
		n, err, rerr := recv(rc, buf)
		if err != nil {
			return err // The deadline: ctx ended.
		}
		switch {
		case errors.Is(rerr, unix.ENOBUFS):
			l.KernelOverflows.Add(1)
			continue
		case rerr != nil:
			return fmt.Errorf("read conntrack events: %w", rerr)
		}
		now := time.Now()
		// A malformed datagram ends its walk; the next read goes on.
		_ = eachMessage(buf[:n], func(typ uint16, msg []byte) bool {
			if typ>>8 != unix.NFNL_SUBSYS_CTNETLINK || len(msg) < nfgenLen {
				return true
			}
			event := "start"
			if typ&0xff == msgDelete {
				event = "end"
			}
			var e entry
			parseEntry(msg[nfgenLen:], &e)
			// Destroy events carry no status: the tuples tell whether
			// the source was translated.
			if e.raw == nil || e.orig.src == e.reply.dst {
				return true
			}
			line := logLine{Time: now, Event: event, Proto: ProtoName(e.proto),
				Pod: e.orig.src.String(), Node: e.reply.dst.String(), Dst: e.reply.src.String()}
			if len(e.id) == 4 {
				line.ID = binary.BigEndian.Uint32(e.id)
			}
			select {
			case lines <- line:
			default:
				l.BufferDrops.Add(1)
			}
			return true
		})
	}
}

// write writes lines as JSON, flushing whenever it has caught up.
func (l *TranslationLog) write(lines <-chan logLine) error {
	bw := bufio.NewWriter(l.w)
	enc := json.NewEncoder(bw)
	var err error
	for line := range lines {
		if err != nil {
			continue // Drain, so that the reader never blocks.
		}
		if err = enc.Encode(line); err == nil {
			if line.Event == "start" {
				l.Starts.Add(1)
			} else {
				l.Ends.Add(1)
			}
		}
		if len(lines) == 0 && err == nil {
			err = bw.Flush()
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write the translation log: %w", err)
	}
	return nil
}
