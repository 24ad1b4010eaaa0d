package testbed

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace a bed creates. The name goes on
// with the creating process's PID, a random tag and the role:
// masqd-e2e-<pid>-<tag>-pod.
const Prefix = "masqd-e2e-"

// Port is where the world's receiver listens, on every address.
const Port = 7777

// dialTimeout bounds one connection from the pod, reply included.
const dialTimeout = 3 * time.Second

// Addresses of the pod and of the node's uplink. They sit in different
// ranges, so the source the receiver saw tells whether masqd masqueraded.
var (
	PodIP4  = netip.MustParseAddr("10.244.1.2")
	PodIP6  = netip.MustParseAddr("fd00:244:1::2")
	NodeIP4 = netip.MustParseAddr("100.115.0.1")
	NodeIP6 = netip.MustParseAddr("fd00:115::1")
)

// Destination is an address the world namespace answers on.
type Destination struct {
	Addr netip.Addr
	What string
}

// Destinations are every address the world answers on. None of them is
// reachable outside the bed's namespaces.
var Destinations = []Destination{
	{netip.MustParseAddr("11.11.11.11"), "a stand-in for an internet address (outside every reserved range)"},
	{netip.MustParseAddr("203.0.113.10"), "a stand-in for an internet address (from a documentation range)"},
	{netip.MustParseAddr("10.96.0.10"), "a cluster peer in 10.0.0.0/8"},
	{netip.MustParseAddr("172.20.0.10"), "a peer in 172.16.0.0/12"},
	{netip.MustParseAddr("192.168.5.10"), "a peer in 192.168.0.0/16"},
	{netip.MustParseAddr("169.254.20.10"), "a link-local address"},
	{netip.MustParseAddr("100.64.0.10"), "carrier-grade NAT space (reserved)"},
	{netip.MustParseAddr("198.51.100.10"), "a documentation range (reserved)"},
	{netip.MustParseAddr("2001:db8:1::10"), "an IPv6 internet address"},
	{netip.MustParseAddr("fd00:96::10"), "an IPv6 cluster peer"},
}

// Bed is one pod → node → world topology. Its exported fields name the
// namespaces, for Exec and for `ip netns exec`.
type Bed struct {
	PodNS, NodeNS, WorldNS string

	created []string // namespaces made so far, removed by Close
	ln      net.Listener
	served  chan struct{} // closed when the receiver has stopped
}

// Skip says why a bed cannot be built here, or returns "".
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

// New builds a bed. It first removes namespaces that earlier runs left
// behind when they were killed. On error, everything New made is removed.
func New(ctx context.Context) (_ *Bed, err error) {
	// Best effort: a leftover that cannot be removed does not stop this run,
	// whose names differ.
	_ = removeStale()

	p := fmt.Sprintf("%s%d-%s", Prefix, os.Getpid(), rand.Text()[:6])
	b := &Bed{PodNS: p + "-pod", NodeNS: p + "-node", WorldNS: p + "-world"}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()
	for _, ns := range []string{b.PodNS, b.NodeNS, b.WorldNS} {
		// Recorded first: a cancelled `ip netns add` may still have made it.
		b.created = append(b.created, ns)
		if err := ipCmd(ctx, "netns", "add", ns); err != nil {
			return nil, err
		}
		// Addresses are usable at once: no duplicate address detection,
		// also for the link-local addresses the kernel adds to each veth.
		if err := sysctls(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"); err != nil {
			return nil, err
		}
	}
	for _, s := range b.steps() {
		if err := ipCmd(ctx, s...); err != nil {
			return nil, err
		}
	}
	if err := sysctls(b.NodeNS, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
		return nil, err
	}
	// The pod closes first and so holds TIME_WAIT for every connection; at
	// thousands of connections a second, connect() would search longer and
	// longer for a free port. Reuse, as busy clients do (IPv4 and IPv6).
	if err := sysctls(b.PodNS, "net.ipv4.tcp_tw_reuse=1"); err != nil {
		return nil, err
	}
	if err := inNS(b.WorldNS, func() (err error) {
		b.ln, err = net.Listen("tcp", fmt.Sprintf(":%d", Port))
		return err
	}); err != nil {
		return nil, fmt.Errorf("listen in %s: %w", b.WorldNS, err)
	}
	b.served = make(chan struct{})
	go b.serve()
	return b, nil
}

// steps are the `ip` invocations that wire the namespaces together.
func (b *Bed) steps() [][]string {
	pod, node, world := b.PodNS, b.NodeNS, b.WorldNS
	steps := [][]string{
		// Explicit, distinct interface indexes: in fresh namespaces both ends
		// of a veth would get index 2, the kernel's link watcher then takes
		// the veth for a plain device and delays its carrier-up by up to a
		// second, and the first IPv6 connection waits for a neighbour retry.
		{"link", "add", "p0", "index", "10", "netns", pod, "type", "veth", "peer", "name", "n0", "index", "11", "netns", node},
		{"link", "add", "n1", "index", "12", "netns", node, "type", "veth", "peer", "name", "w0", "index", "13", "netns", world},
		{"-n", pod, "addr", "add", PodIP4.String() + "/24", "dev", "p0"},
		{"-n", pod, "addr", "add", PodIP6.String() + "/64", "dev", "p0", "nodad"},
		{"-n", node, "addr", "add", "10.244.1.1/24", "dev", "n0"},
		{"-n", node, "addr", "add", "fd00:244:1::1/64", "dev", "n0", "nodad"},
		{"-n", node, "addr", "add", NodeIP4.String() + "/24", "dev", "n1"},
		{"-n", node, "addr", "add", NodeIP6.String() + "/64", "dev", "n1", "nodad"},
		{"-n", world, "addr", "add", "100.115.0.2/24", "dev", "w0"},
		{"-n", world, "addr", "add", "fd00:115::2/64", "dev", "w0", "nodad"},
		{"-n", pod, "link", "set", "lo", "up"},
		{"-n", node, "link", "set", "lo", "up"},
		{"-n", world, "link", "set", "lo", "up"},
		{"-n", pod, "link", "set", "p0", "up"},
		{"-n", node, "link", "set", "n0", "up"},
		{"-n", node, "link", "set", "n1", "up"},
		{"-n", world, "link", "set", "w0", "up"},
		{"-n", pod, "route", "add", "default", "via", "10.244.1.1"},
		{"-n", pod, "-6", "route", "add", "default", "via", "fd00:244:1::1"},
		{"-n", node, "route", "add", "default", "via", "100.115.0.2"},
		{"-n", node, "-6", "route", "add", "default", "via", "fd00:115::2"},
		// Un-masqueraded replies find their way back, as on a cluster.
		{"-n", world, "route", "add", "10.244.1.0/24", "via", NodeIP4.String()},
		{"-n", world, "-6", "route", "add", "fd00:244:1::/64", "via", NodeIP6.String()},
	}
	for _, d := range Destinations {
		step := []string{"-n", world, "addr", "add", d.Addr.String() + "/32", "dev", "lo"}
		if d.Addr.Is6() {
			step = []string{"-n", world, "addr", "add", d.Addr.String() + "/128", "dev", "lo", "nodad"}
		}
		steps = append(steps, step)
	}
	return steps
}

// NodePath is the node namespace's bind mount, for masqd's --netns.
func (b *Bed) NodePath() string { return "/run/netns/" + b.NodeNS }

// serve answers every connection with the source address and port it saw,
// then waits for the client to close first: the TIME_WAIT state stays with
// the client. Were it the receiver's, a later masqueraded connection that
// the NAT gives the same source port could find that state and stall (its
// sequence numbers follow the pod's own port, not the translated one).
func (b *Bed) serve() {
	var conns sync.WaitGroup
	defer func() {
		conns.Wait()
		close(b.served)
	}()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		conns.Go(func() {
			defer c.Close()
			src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			fmt.Fprintf(c, "%s\n", netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
			_ = c.SetReadDeadline(time.Now().Add(dialTimeout))
			_, _ = io.Copy(io.Discard, c)
		})
	}
}

// SourceSeen connects from the pod to dst and returns the source address
// and port the world's receiver saw.
func (b *Bed) SourceSeen(ctx context.Context, dst netip.Addr) (netip.AddrPort, error) {
	return b.SourceSeenFrom(ctx, netip.Addr{}, dst)
}

// SourceSeenFrom is SourceSeen from the pod's address src, which the caller
// added to the pod's interface; the zero Addr lets the kernel choose.
func (b *Bed) SourceSeenFrom(ctx context.Context, src, dst netip.Addr) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var c net.Conn
	// The socket is made in the pod's namespace and stays there.
	err := inNS(b.PodNS, func() (err error) {
		var d net.Dialer
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(dst, Port).String())
		return err
	})
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("connect from the pod to %s: %w", dst, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return netip.AddrPort{}, fmt.Errorf("connection to %s: %w", dst, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("read the reply of %s: %w", dst, err)
	}
	seen, err := netip.ParseAddrPort(strings.TrimSpace(reply))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reply of %s: %w", dst, err)
	}
	return seen, nil
}

// Dial connects from one of the bed's namespaces to address; from the node,
// it reaches what a host-network process there serves, as kubelet's probes
// of a host-network pod do.
func (b *Bed) Dial(ctx context.Context, ns, network, address string) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect from %s to %s: %w", ns, address, err)
	}
	return c, nil
}

// Exec runs a command in one of the bed's namespaces and returns its
// combined output.
func (b *Bed) Exec(ctx context.Context, ns, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
}

// Close stops the receiver and removes the namespaces, and with them every
// link, address and route of the bed. It is not bound to a context, so it
// also cleans up after a cancelled run.
func (b *Bed) Close() error {
	if b.ln != nil {
		b.ln.Close()
		<-b.served
		b.ln = nil
	}
	var errs []error
	for _, ns := range b.created {
		if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
			continue
		}
		errs = append(errs, deleteNS(ns))
	}
	b.created = nil
	return errors.Join(errs...)
}

// staleName matches the namespaces of a bed: Prefix, PID, tag, role.
var staleName = regexp.MustCompile(`^` + regexp.QuoteMeta(Prefix) + `([0-9]+)-[0-9A-Za-z]+-(pod|node|world)$`)

// removeStale deletes the namespaces of beds whose process is gone (a
// SIGKILL or a test binary timeout skips Close). It touches no other name.
func removeStale() error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			errs = append(errs, deleteNS(e.Name()))
		}
	}
	return errors.Join(errs...)
}

func deleteNS(ns string) error {
	return ipCmd(context.Background(), "netns", "del", ns)
}

func ipCmd(ctx context.Context, args ...string) error {
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sysctls sets key=value settings inside namespace ns: /proc/sys/net shows
// the namespace of the thread that opens it.
func sysctls(ns string, settings ...string) error {
	return inNS(ns, func() error {
		for _, s := range settings {
			key, value, _ := strings.Cut(s, "=")
			path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
			if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
				return fmt.Errorf("sysctl %s in %s: %w", s, ns, err)
			}
		}
		return nil
	})
}

// inNS runs fn on an OS thread moved into namespace ns. Sockets fn creates
// stay in that namespace. The thread moves back before it is unlocked; if
// it cannot, it stays locked and Go discards it when the goroutine ends, so
// no goroutine ever runs in the wrong namespace.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- inNSLocked(ns, fn)
	}()
	return <-errc
}

// inNSLocked does inNS's work on the locked thread and unlocks it only
// once it is back in its own namespace.
func inNSLocked(ns string, fn func() error) error {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}
