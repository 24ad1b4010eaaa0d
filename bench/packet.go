package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The packet test's addresses, all inside the harness's namespaces
// (documentation ranges, none of them in the N benchmark CIDRs).
const (
	podAddr       = "192.0.2.2/24"
	nodePodSide   = "192.0.2.1/24"
	nodeGateway   = "192.0.2.1"
	nodeWorldSide = "203.0.113.1/24"
	worldAddr     = "203.0.113.2/24"
	worldListen   = "203.0.113.2:8080"
)

// nodeIP is the address the world sees when the node masquerades.
var nodeIP = netip.MustParseAddr("203.0.113.1")

// topo is a pod, a node running a NAT ruleset and the outside world, each a
// namespace, joined by veth pairs.
type topo struct {
	tool             string
	n                int
	pod, node, world *netns
	server           *server
}

func (t *topo) Close() {
	if t.server != nil {
		t.server.Close()
	}
	for _, ns := range []*netns{t.pod, t.node, t.world} {
		if ns != nil {
			ns.Close()
		}
	}
}

func (b *bench) newTopo(ctx context.Context, tool string, n int) (*topo, error) {
	t, err := b.wireTopo(ctx, tool, n)
	if err != nil {
		return nil, err
	}
	f := b.files[n]
	switch tool {
	case toolMasqd:
		_, err = runTimed(ctx, nil, "", b.bin, "--once", "--config", f.Config, "--netns", t.node.Path())
	case toolIptNft:
		_, err = runTimed(ctx, t.node, f.Ipt, "iptables-nft-restore", "--noflush")
	case toolIptLegacy:
		_, err = runTimed(ctx, t.node, f.Ipt, "iptables-legacy-restore", "--noflush")
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("load %s ruleset: %w", tool, err)
	}
	if t.server, err = listen(t.world); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// wireTopo creates the three namespaces and joins them, with forwarding
// on in the node and no ruleset loaded.
func (b *bench) wireTopo(ctx context.Context, tool string, n int) (*topo, error) {
	t := &topo{tool: tool, n: n}
	var err error
	for _, p := range []**netns{&t.pod, &t.node, &t.world} {
		if *p, err = b.ns.Add(ctx); err != nil {
			t.Close()
			return nil, err
		}
	}
	pod, node, world := t.pod.name, t.node.name, t.world.name
	steps := [][]string{
		{"-n", node, "link", "add", "to-pod", "type", "veth", "peer", "name", "eth0", "netns", pod},
		{"-n", node, "link", "add", "to-world", "type", "veth", "peer", "name", "eth0", "netns", world},
		{"-n", pod, "addr", "add", podAddr, "dev", "eth0"},
		{"-n", pod, "link", "set", "eth0", "up"},
		{"-n", pod, "route", "add", "default", "via", nodeGateway},
		{"-n", node, "addr", "add", nodePodSide, "dev", "to-pod"},
		{"-n", node, "addr", "add", nodeWorldSide, "dev", "to-world"},
		{"-n", node, "link", "set", "to-pod", "up"},
		{"-n", node, "link", "set", "to-world", "up"},
		{"-n", world, "addr", "add", worldAddr, "dev", "eth0"},
		{"-n", world, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			t.Close()
			return nil, err
		}
	}
	if err := t.node.Sysctl(ctx, "net.ipv4.ip_forward", "1"); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// server accepts connections in the world namespace, sends one byte on
// each, and counts them by whether they came from the node's address.
type server struct {
	ln          net.Listener
	wg          sync.WaitGroup
	masqueraded atomic.Int64
	other       atomic.Int64
}

func listen(ns *netns) (*server, error) {
	s := &server{}
	err := ns.Do(func() error {
		var err error
		s.ln, err = net.Listen("tcp", worldListen)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen in %s: %w", ns.name, err)
	}
	s.wg.Go(s.serve)
	return s, nil
}

func (s *server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil && ap.Addr() == nodeIP {
			s.masqueraded.Add(1)
		} else {
			s.other.Add(1)
		}
		s.wg.Go(func() {
			defer c.Close()
			if _, err := c.Write([]byte{1}); err != nil {
				return
			}
			// The client resets the connection; wait for that.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, c)
		})
	}
}

func (s *server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// connResult is one bounded burst of new connections.
type connResult struct {
	OK, Failed int64
	Elapsed    time.Duration
}

// Rate is successful connections per second.
func (r connResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// connect opens short connections from the pod to the world until d has
// passed or max have been made, with the given number of workers. Each
// connection is a handshake, one byte from the server, and a reset from
// the client (SO_LINGER 0), so neither side keeps TIME_WAIT state.
func (t *topo) connect(ctx context.Context, workers int, d time.Duration, max int64) (connResult, error) {
	var ok, failed, started atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			errs[w] = t.pod.Do(func() error {
				dialer := net.Dialer{Timeout: 2 * time.Second}
				buf := make([]byte, 1)
				for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= max {
					if err := oneConn(ctx, &dialer, buf); err != nil {
						if failed.Add(1) > max/100+10 {
							return fmt.Errorf("too many failed connections, last: %w", err)
						}
						continue
					}
					ok.Add(1)
				}
				return nil
			})
		})
	}
	wg.Wait()
	r := connResult{OK: ok.Load(), Failed: failed.Load(), Elapsed: time.Since(start)}
	return r, errors.Join(errs...)
}

func oneConn(ctx context.Context, d *net.Dialer, buf []byte) error {
	c, err := d.DialContext(ctx, "tcp", worldListen)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	defer tc.Close()
	_ = tc.SetLinger(0)
	_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = io.ReadFull(tc, buf)
	return err
}

// packetRow is measurement 5 at one N.
type packetRow struct {
	N    int
	Rate map[string]stat // new connections per second, by tool
	// Masqueraded is false if any connection reached the world with a
	// source other than the node's address.
	Masqueraded bool
	Failed      int64
}

// measurePacket is measurement 5: the rate of new connections through the
// node's NAT with N CIDRs in masqd's interval set and as N iptables RETURN
// rules. Every topology is built first and the repetitions take turns
// across them, so that a ratio compares runs made moments apart.
func (b *bench) measurePacket(ctx context.Context) error {
	tools := []string{toolMasqd, toolIptNft}
	if b.legacy && b.plan.packetLegacy {
		tools = append(tools, toolIptLegacy)
	}
	var topos []*topo
	defer func() {
		for _, t := range topos {
			t.Close()
		}
	}()
	for _, n := range b.plan.packetSizes {
		if _, ok := b.files[n]; !ok {
			f, err := b.prepareApply(ctx, n)
			if err != nil {
				return err
			}
			b.files[n] = f
		}
		for _, tool := range tools {
			t, err := b.newTopo(ctx, tool, n)
			if err != nil {
				return fmt.Errorf("%s, N=%d: %w", tool, n, err)
			}
			topos = append(topos, t)
		}
	}
	rates, failed, err := b.packetRates(ctx, topos)
	if err != nil {
		return err
	}
	byN := map[int]*packetRow{}
	for _, t := range topos {
		row := byN[t.n]
		if row == nil {
			row = &packetRow{N: t.n, Rate: map[string]stat{}, Masqueraded: true, Failed: failed[t.n]}
			byN[t.n] = row
		}
		row.Rate[t.tool] = summarize(rates[t])
		if t.server.other.Load() > 0 {
			row.Masqueraded = false
		}
	}
	for _, n := range b.plan.packetSizes {
		b.res.Packet = append(b.res.Packet, *byN[n])
	}
	b.res.PacketRatio = packetRatios(tools, topos, rates, b.plan.packetSizes[0])
	for _, row := range b.res.Packet {
		b.progress("packet N=%d: masqd %.0f conn/s, iptables-nft %.0f conn/s", row.N, row.Rate[toolMasqd].Med, row.Rate[toolIptNft].Med)
	}
	return nil
}

// packetRates warms every topology up, then measures b.plan.reps rounds in
// which the topologies take turns. It returns each topology's rate per
// round and the failed connections summed by N.
func (b *bench) packetRates(ctx context.Context, topos []*topo) (map[*topo][]float64, map[int]int64, error) {
	rates := map[*topo][]float64{}
	failed := map[int]int64{}
	for _, t := range topos {
		// Warm up: ARP, routes, conntrack and the Go runtime.
		if _, err := t.connect(ctx, b.plan.workers, time.Second, 100); err != nil {
			return nil, nil, fmt.Errorf("%s, N=%d warm-up: %w", t.tool, t.n, err)
		}
	}
	for range b.plan.reps {
		for _, t := range topos {
			r, err := t.connect(ctx, b.plan.workers, b.plan.packetTime, b.plan.packetMax)
			if err != nil {
				return nil, nil, fmt.Errorf("%s, N=%d: %w", t.tool, t.n, err)
			}
			rates[t] = append(rates[t], r.Rate())
			failed[t.n] += r.Failed
		}
	}
	return rates, failed, nil
}

// packetRatios are, by tool and N, the ratios of each N's rate to the rate
// at baseN (the plan's first N), taken per repetition.
func packetRatios(tools []string, topos []*topo, rates map[*topo][]float64, baseN int) map[string]map[int]stat {
	out := map[string]map[int]stat{}
	for _, tool := range tools {
		var base []float64
		for _, t := range topos {
			if t.tool == tool && t.n == baseN {
				base = rates[t]
			}
		}
		out[tool] = map[int]stat{}
		for _, t := range topos {
			if t.tool == tool {
				out[tool][t.n] = summarize(ratios(rates[t], base))
			}
		}
	}
	return out
}
