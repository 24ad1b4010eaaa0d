// Package testbed builds a throw-away pod → node → world topology in network
// namespaces it creates, for masqd's end-to-end tests and demo. Every
// address lives only inside those namespaces; Close removes them all.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the topology.
var (
	PodIP4  = netip.MustParseAddr("10.244.1.2")
	PodIP6  = netip.MustParseAddr("fd00:244:1::2")
	NodeIP4 = netip.MustParseAddr("100.115.0.1")
	NodeIP6 = netip.MustParseAddr("fd00:115::1")
)

// Port is where the world's receiver listens.
const Port = 7777

// Destination is an address in the world namespace.
type Destination struct {
	Addr netip.Addr
	What string
}

// Destinations are every address the world answers on.
var Destinations = []Destination{
	{netip.MustParseAddr("11.11.11.11"), "an internet address (outside every reserved range)"},
	{netip.MustParseAddr("203.0.113.10"), "an internet address (a reserved documentation range)"},
	{netip.MustParseAddr("10.96.0.10"), "a cluster peer in 10.0.0.0/8"},
	{netip.MustParseAddr("172.20.0.10"), "a peer in 172.16.0.0/12"},
	{netip.MustParseAddr("192.168.5.10"), "a peer in 192.168.0.0/16"},
	{netip.MustParseAddr("169.254.20.10"), "a link-local address"},
	{netip.MustParseAddr("100.64.0.10"), "carrier-grade NAT space (reserved)"},
	{netip.MustParseAddr("198.51.100.10"), "a documentation range (reserved)"},
	{netip.MustParseAddr("2001:db8:1::10"), "an IPv6 internet address"},
	{netip.MustParseAddr("fd00:96::10"), "an IPv6 cluster peer"},
}

var seq atomic.Int64

// Bed is one topology.
type Bed struct {
	prefix           string
	Pod, Node, World string // namespace names
	ln               net.Listener
}

// NodePath is the node namespace's path, for masqd --netns.
func (b *Bed) NodePath() string { return "/run/netns/" + b.Node }

// Skip says why the bed cannot run here, or "".
func Skip() string {
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces"
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (apt-get install -y iproute2 nftables)"
		}
	}
	return ""
}

// New builds a bed. On error everything made so far is removed.
func New() (b *Bed, err error) {
	p := fmt.Sprintf("masqd-e2e-%d-%d", os.Getpid(), seq.Add(1))
	b = &Bed{prefix: p, Pod: p + "-pod", Node: p + "-node", World: p + "-world"}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	for _, ns := range []string{b.Pod, b.Node, b.World} {
		if err := ipCmd("netns", "add", ns); err != nil {
			return nil, err
		}
	}
	steps := [][]string{
		{"link", "add", "p0", "netns", b.Pod, "type", "veth", "peer", "name", "n0", "netns", b.Node},
		{"link", "add", "n1", "netns", b.Node, "type", "veth", "peer", "name", "w0", "netns", b.World},
		{"-n", b.Pod, "addr", "add", "10.244.1.2/24", "dev", "p0"},
		{"-n", b.Pod, "addr", "add", "fd00:244:1::2/64", "dev", "p0", "nodad"},
		{"-n", b.Node, "addr", "add", "10.244.1.1/24", "dev", "n0"},
		{"-n", b.Node, "addr", "add", "fd00:244:1::1/64", "dev", "n0", "nodad"},
		{"-n", b.Node, "addr", "add", "100.115.0.1/24", "dev", "n1"},
		{"-n", b.Node, "addr", "add", "fd00:115::1/64", "dev", "n1", "nodad"},
		{"-n", b.World, "addr", "add", "100.115.0.2/24", "dev", "w0"},
		{"-n", b.World, "addr", "add", "fd00:115::2/64", "dev", "w0", "nodad"},
	}
	for _, ns := range []string{b.Pod, b.Node, b.World} {
		steps = append(steps, []string{"-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		[]string{"-n", b.Pod, "link", "set", "p0", "up"},
		[]string{"-n", b.Node, "link", "set", "n0", "up"},
		[]string{"-n", b.Node, "link", "set", "n1", "up"},
		[]string{"-n", b.World, "link", "set", "w0", "up"},
		[]string{"-n", b.Pod, "route", "add", "default", "via", "10.244.1.1"},
		[]string{"-n", b.Pod, "-6", "route", "add", "default", "via", "fd00:244:1::1"},
		[]string{"-n", b.Node, "route", "add", "default", "via", "100.115.0.2"},
		[]string{"-n", b.Node, "-6", "route", "add", "default", "via", "fd00:115::2"},
		// Un-masqueraded replies must find their way back, as on a cluster.
		[]string{"-n", b.World, "route", "add", "10.244.1.0/24", "via", "100.115.0.1"},
		[]string{"-n", b.World, "-6", "route", "add", "fd00:244:1::/64", "via", "fd00:115::1"},
	)
	for _, d := range Destinations {
		step := []string{"-n", b.World, "addr", "add", d.Addr.String() + "/32", "dev", "lo"}
		if d.Addr.Is6() {
			step = []string{"-n", b.World, "addr", "add", d.Addr.String() + "/128", "dev", "lo", "nodad"}
		}
		steps = append(steps, step)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return nil, err
		}
	}
	for _, sysctl := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
		if out, err := exec.Command("ip", "netns", "exec", b.Node, "sysctl", "-qw", sysctl).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sysctl %s in %s: %v: %s", sysctl, b.Node, err, out)
		}
	}
	if err := inNS(b.World, func() error {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", Port))
		b.ln = ln
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", b.World, err)
	}
	go b.serve()
	return b, nil
}

// serve answers every connection with the source address it saw.
func (b *Bed) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s\n", netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		c.Close()
	}
}

// SourceSeen connects from the pod to dst and returns the source address
// and port the receiver saw.
func (b *Bed) SourceSeen(ctx context.Context, dst netip.Addr) (netip.AddrPort, error) {
	var reply []byte
	err := inNS(b.Pod, func() error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(dst, Port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		reply, err = io.ReadAll(c)
		return err
	})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("connect from pod to %s: %w", dst, err)
	}
	return netip.ParseAddrPort(strings.TrimSpace(string(reply)))
}

// Exec runs a command in one of the bed's namespaces.
func (b *Bed) Exec(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
}

// Close removes the namespaces, and so every link and address in them.
func (b *Bed) Close() error {
	if b.ln != nil {
		b.ln.Close()
	}
	var errs []error
	for _, ns := range []string{b.Pod, b.Node, b.World} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			errs = append(errs, ipCmd("netns", "del", ns))
		}
	}
	return errors.Join(errs...)
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// inNS runs fn on an OS thread moved into namespace ns. Sockets fn creates
// stay in that namespace. The thread moves back before it is unlocked; if
// it cannot, it stays locked and dies with the goroutine.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			runtime.UnlockOSThread()
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return // the thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
