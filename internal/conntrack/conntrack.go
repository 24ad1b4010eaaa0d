package conntrack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/nft"
)

// Mode says which protocols' entries Reconcile removes (--conntrack-reconcile).
type Mode uint8

// Modes.
const (
	// Off removes nothing.
	Off Mode = iota
	// UDP removes entries of UDP and every other protocol without
	// connection state (ICMP, UDP-Lite, GRE, ESP, ...): the next packet
	// creates a new entry and nothing is lost.
	UDP
	// All also removes TCP, SCTP and DCCP entries: the next packet of such
	// a connection no longer matches an entry, and the connection is reset
	// once its source changes.
	All
)

// Modes in flag order.
var modes = []string{Off: "off", UDP: "udp", All: "all"}

func (m Mode) String() string {
	if int(m) < len(modes) {
		return modes[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses --conntrack-reconcile.
func ParseMode(s string) (Mode, error) {
	if i := slices.Index(modes, s); i >= 0 {
		return Mode(i), nil
	}
	return Off, fmt.Errorf("--conntrack-reconcile=%q: want udp (the default), all or off", s)
}

// Protocols with connection state: a removed entry breaks the connection.
const (
	protoTCP  = unix.IPPROTO_TCP
	protoDCCP = unix.IPPROTO_DCCP
	protoSCTP = unix.IPPROTO_SCTP
)

// Covers reports whether the mode removes entries of an IP protocol.
func (m Mode) Covers(proto uint8) bool {
	switch m {
	case All:
		return true
	case UDP:
		return proto != protoTCP && proto != protoDCCP && proto != protoSCTP
	}
	return false
}

// ProtoName names an IP protocol for metrics and logs.
func ProtoName(p uint8) string {
	switch p {
	case unix.IPPROTO_ICMP:
		return "icmp"
	case protoTCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case protoDCCP:
		return "dccp"
	case unix.IPPROTO_GRE:
		return "gre"
	case unix.IPPROTO_ESP:
		return "esp"
	case unix.IPPROTO_ICMPV6:
		return "icmpv6"
	case protoSCTP:
		return "sctp"
	case unix.IPPROTO_UDPLITE:
		return "udplite"
	}
	return strconv.Itoa(int(p))
}

// Result is what one Reconcile did.
type Result struct {
	// Changes are the destination ranges whose verdict may have changed.
	Changes []nft.Change
	// Examined counts the entries read from the kernel: zero when no range
	// changed or the mode is Off.
	Examined int
	// Removed counts the entries removed, by protocol name.
	Removed map[string]int
	// Failed counts the entries that should have gone but could not be
	// removed.
	Failed int
	Took   time.Duration
}

// Total is the number of entries removed.
func (r Result) Total() int {
	n := 0
	for _, v := range r.Removed {
		n += v
	}
	return n
}

// Conn removes stale conntrack entries in one network namespace. Reconcile
// may be called from one goroutine at a time.
type Conn struct {
	ns   *os.File // nil: the caller's namespace
	mode Mode
}

// Open returns a Conn for the network namespace at nsPath (such as
// /run/netns/NAME), or for the caller's namespace when nsPath is empty.
func Open(nsPath string, mode Mode) (*Conn, error) {
	c := &Conn{mode: mode}
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		c.ns = f
	}
	return c, nil
}

// Close releases the namespace handle.
func (c *Conn) Close() error {
	if c.ns == nil {
		return nil
	}
	return c.ns.Close()
}

// Mode returns the Conn's mode.
func (c *Conn) Mode() Mode { return c.mode }

// dumpBuffer is the socket receive buffer for dumps: the kernel fills it
// before the reader drains it.
const dumpBuffer = 8 << 20

// Reconcile removes the entries that the change from before to after made
// stale. When no verdict changed, or the mode is Off, it does no conntrack
// work at all. An error says that some entries may remain; the Result
// still counts what was done.
func (c *Conn) Reconcile(ctx context.Context, before, after *nft.Ruleset) (Result, error) {
	start := time.Now()
	res, err := c.reconcile(ctx, before, after)
	res.Took = time.Since(start)
	return res, err
}

func (c *Conn) reconcile(ctx context.Context, before, after *nft.Ruleset) (Result, error) {
	res := Result{Changes: nft.Changes(before, after), Removed: map[string]int{}}
	if c.mode == Off || len(res.Changes) == 0 {
		return res, nil
	}
	cfg := &netlink.Config{}
	if c.ns != nil {
		cfg.NetNS = int(c.ns.Fd())
	}
	conn, err := ct.Dial(cfg)
	if err != nil {
		return res, fmt.Errorf("talk to conntrack over netlink: %w", err)
	}
	defer conn.Close()
	if err := conn.SetReadBuffer(dumpBuffer); err != nil {
		return res, fmt.Errorf("conntrack socket buffer: %w", err)
	}
	var errs []error
	for _, fam := range []struct {
		is4 bool
		pf  netfilter.ProtoFamily
	}{{true, netfilter.ProtoIPv4}, {false, netfilter.ProtoIPv6}} {
		changes := slices.DeleteFunc(slices.Clone(res.Changes), func(ch nft.Change) bool { return ch.First.Is4() != fam.is4 })
		if len(changes) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		flows, err := conn.DumpFilter(ct.NewFilter().Family(fam.pf), nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("dump conntrack (%s): %w", fam.pf, err))
			continue
		}
		res.Examined += len(flows)
		for i := range flows {
			f := &flows[i]
			if !c.mode.Covers(f.TupleOrig.Proto.Protocol) || !stale(changes, f) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return res, errors.Join(append(errs, err)...)
			}
			// The reply tuple only tells the library the family.
			switch err := conn.Delete(ct.Flow{TupleOrig: f.TupleOrig, TupleReply: f.TupleReply, Zone: f.Zone}); {
			case err == nil:
				res.Removed[ProtoName(f.TupleOrig.Proto.Protocol)]++
			case errors.Is(err, unix.ENOENT):
				// Gone on its own since the dump: nothing left to do.
			default:
				res.Failed++
				if len(errs) < maxErrors {
					errs = append(errs, fmt.Errorf("delete conntrack entry %s: %w", f.TupleOrig, err))
				}
			}
		}
	}
	return res, errors.Join(errs...)
}

// maxErrors caps the errors one Reconcile returns; Failed counts them all.
const maxErrors = 5

// Destination returns the destination masqd's chain saw for an entry: the
// original destination, or the address it was DNATed to before postrouting
// (a Service's backend), which is the reply's source.
func Destination(f *ct.Flow) netip.Addr {
	if a := f.TupleReply.IP.SourceAddress; a.IsValid() {
		return a.Unmap()
	}
	return f.TupleOrig.IP.DestinationAddress.Unmap()
}

// stale reports whether f goes to a destination in one of changes, which
// are sorted and of f's family, and can carry a decision of the old rules.
func stale(changes []nft.Change, f *ct.Flow) bool {
	dst := Destination(f)
	i, found := slices.BinarySearchFunc(changes, dst, func(ch nft.Change, a netip.Addr) int {
		if ch.Last.Less(a) {
			return -1
		}
		if a.Less(ch.First) {
			return 1
		}
		return 0
	})
	return found && changes[i].Stale(f.Status.SrcNAT())
}
