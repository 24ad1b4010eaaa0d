package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// FlowPort is where the world's flow echo listens, for UDP and for TCP, on
// every address of Destinations.
const FlowPort = 7778

// Echo answers long-lived flows in the world namespace: every UDP datagram
// and every line on a TCP connection gets the sender's address and port as
// the world saw it. Start one with Bed.StartEcho.
type Echo struct {
	udp   []*net.UDPConn
	tcp   []net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartEcho starts an Echo on every destination address; Close stops it.
// Each address gets sockets of its own, so replies leave from the address
// the pod sent to.
func (b *Bed) StartEcho() (_ *Echo, err error) {
	e := &Echo{conns: map[net.Conn]struct{}{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	err = inNS(b.WorldNS, func() error {
		for _, d := range Destinations {
			ap := netip.AddrPortFrom(d.Addr, FlowPort)
			u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				return err
			}
			e.udp = append(e.udp, u)
			l, err := net.Listen("tcp", ap.String())
			if err != nil {
				return err
			}
			e.tcp = append(e.tcp, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("echo in %s: %w", b.WorldNS, err)
	}
	for _, u := range e.udp {
		e.wg.Go(func() { e.serveUDP(u) })
	}
	for _, l := range e.tcp {
		e.wg.Go(func() { e.serveTCP(l) })
	}
	return e, nil
}

func (e *Echo) serveUDP(u *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := u.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		seen := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		_, _ = u.WriteToUDPAddrPort([]byte(seen.String()), from)
	}
}

func (e *Echo) serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.conns[c] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(func() {
			defer func() {
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
				c.Close()
			}()
			src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			seen := netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			r := bufio.NewScanner(c)
			for r.Scan() {
				if _, err := fmt.Fprintf(c, "%s\n", seen); err != nil {
					return
				}
			}
		})
	}
}

// Close stops every socket of the Echo and waits for its goroutines.
func (e *Echo) Close() {
	for _, u := range e.udp {
		u.Close()
	}
	for _, l := range e.tcp {
		l.Close()
	}
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// Flow is a long-lived flow from the pod to an Echo: a datagram or a line
// every interval, from a fixed source port. It records what the world
// reported as the flow's source.
type Flow struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	seen    []Sighting
	last    time.Time // of the last reply
	resets  int
	lastErr error
}

// Sighting is a source the world reported, and when it first did.
type Sighting struct {
	Source netip.AddrPort
	At     time.Time
}

// StartUDPFlow sends a datagram from the pod's port srcPort to dst every
// interval, until Close.
func (b *Bed) StartUDPFlow(srcPort uint16, dst netip.Addr, interval time.Duration) (*Flow, error) {
	var c *net.UDPConn
	err := inNS(b.PodNS, func() (err error) {
		c, err = net.DialUDP("udp", &net.UDPAddr{Port: int(srcPort)}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, FlowPort)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("udp flow from the pod's port %d to %s: %w", srcPort, dst, err)
	}
	f := &Flow{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer c.Close()
		buf := make([]byte, 100)
		next := time.Now()
		for {
			if _, err := c.Write([]byte("ping")); err != nil {
				f.fail(err, false)
			}
			// Replies until the next datagram is due.
			next = next.Add(interval)
			for c.SetReadDeadline(next) == nil {
				n, err := c.Read(buf)
				if err != nil {
					// A timeout is due; anything else (an ICMP error)
					// waits out the interval too.
					time.Sleep(time.Until(next))
					break
				}
				f.sighted(string(buf[:n]))
			}
			select {
			case <-f.stop:
				return
			default:
			}
		}
	}()
	return f, nil
}

// StartTCPFlow keeps a TCP connection from the pod to dst and sends a line
// every interval. When the connection breaks it counts a reset and
// connects again, as a client that must stay connected does.
func (b *Bed) StartTCPFlow(dst netip.Addr, interval time.Duration) (*Flow, error) {
	dial := func() (net.Conn, error) {
		var c net.Conn
		err := inNS(b.PodNS, func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(dst, FlowPort).String(), dialTimeout)
			return err
		})
		return c, err
	}
	c, err := dial()
	if err != nil {
		return nil, fmt.Errorf("tcp flow from the pod to %s: %w", dst, err)
	}
	f := &Flow{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		r := bufio.NewReader(c)
		for {
			select {
			case <-f.stop:
				if c != nil {
					c.Close()
				}
				return
			case <-time.After(interval):
			}
			if c == nil {
				if c, err = dial(); err != nil {
					f.fail(err, false)
					c = nil
					continue
				}
				r = bufio.NewReader(c)
			}
			_ = c.SetDeadline(time.Now().Add(dialTimeout))
			line, err := "", error(nil)
			if _, err = fmt.Fprintln(c, "ping"); err == nil {
				line, err = r.ReadString('\n')
			}
			if err != nil {
				f.fail(err, true)
				c.Close()
				c = nil
				continue
			}
			f.sighted(line[:len(line)-1])
		}
	}()
	return f, nil
}

func (f *Flow) fail(err error, reset bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
	if reset {
		f.resets++
	}
}

func (f *Flow) sighted(s string) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		f.fail(fmt.Errorf("echo reply %q: %w", s, err), false)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = time.Now()
	if n := len(f.seen); n == 0 || f.seen[n-1].Source != ap {
		f.seen = append(f.seen, Sighting{Source: ap, At: time.Now()})
	}
}

// Seen returns every source the world reported, in order, each once per
// change.
func (f *Flow) Seen() []Sighting {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Sighting(nil), f.seen...)
}

// LastReply returns when the world last answered.
func (f *Flow) LastReply() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Resets counts the TCP connections that broke.
func (f *Flow) Resets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resets
}

// WaitSource waits until the world reports addr as the flow's source in a
// sighting that lasted until since or began after it, and returns when that
// sighting began.
// It fails naming what it saw.
func (f *Flow) WaitSource(ctx context.Context, addr netip.Addr, since time.Time, within time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		f.mu.Lock()
		for i, s := range f.seen {
			// A sighting lasts until the next one begins.
			lasting := i+1 == len(f.seen) || f.seen[i+1].At.After(since)
			if s.Source.Addr() == addr && lasting {
				f.mu.Unlock()
				return s.At, nil
			}
		}
		seen, lastErr := fmt.Sprint(f.seen), f.lastErr
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waited %s for the world to see source %s; it saw %s (last error: %v)", within, addr, seen, lastErr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops the flow and waits for its goroutine.
func (f *Flow) Close() {
	close(f.stop)
	<-f.done
}
