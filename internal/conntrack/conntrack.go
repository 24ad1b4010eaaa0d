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
	ns, err := openNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	return &Conn{ns: ns, mode: mode}, nil
}

// Close releases the namespace handle.
func (c *Conn) Close() error {
	if c.ns == nil {
		return nil
	}
	return c.ns.Close()
}

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
	conn, err := dial(c.ns, dumpBuffer, "conntrack socket")
	if err != nil {
		return res, err
	}
	defer conn.Close()
	var errs []error
	for _, fam := range []struct {
		is4    bool
		family uint8
	}{{true, unix.AF_INET}, {false, unix.AF_INET6}} {
		changes := slices.DeleteFunc(slices.Clone(res.Changes), func(ch nft.Change) bool { return ch.First.Is4() != fam.is4 })
		if len(changes) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// The dump holds the socket: collect, then delete.
		var doomed []entry
		status, mask := statusFilter(changes)
		err := dump(conn, fam.family, status, mask, func(e *entry) {
			res.Examined++
			if c.mode.Covers(e.proto) && stale(changes, e) {
				e.raw, e.zone, e.id = slices.Clone(e.raw), slices.Clone(e.zone), slices.Clone(e.id)
				doomed = append(doomed, *e)
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("dump conntrack (%s): %w", familyName(fam.is4), err))
			continue
		}
		for i := range doomed {
			e := &doomed[i]
			if err := ctx.Err(); err != nil {
				return res, errors.Join(append(errs, err)...)
			}
			switch err := del(conn, fam.family, e); {
			case err == nil:
				res.Removed[ProtoName(e.proto)]++
			case errors.Is(err, unix.ENOENT):
				// Gone, or replaced by a new entry, since the dump.
			default:
				res.Failed++
				if len(errs) < maxErrors {
					errs = append(errs, fmt.Errorf("delete conntrack entry (%s to %s): %w", ProtoName(e.proto), e.orig.dst, err))
				}
			}
		}
	}
	return res, errors.Join(errs...)
}

func familyName(is4 bool) string {
	if is4 {
		return "ipv4"
	}
	return "ipv6"
}

// statusFilter returns the status filter for a dump: when every change
// makes only translated or only untranslated entries stale, the kernel
// sends those alone (Linux 5.15 and later; older kernels send every entry,
// and stale decides the same). A zero mask asks for every entry.
func statusFilter(changes []nft.Change) (status, mask uint32) {
	translated, untranslated := false, false
	for _, c := range changes {
		translated = translated || c.Stale(true)
		untranslated = untranslated || c.Stale(false)
	}
	switch {
	case translated && !untranslated:
		return statusSrcNAT, statusSrcNAT
	case untranslated && !translated:
		return 0, statusSrcNAT
	}
	return 0, 0
}

// maxErrors caps the errors one Reconcile returns; Failed counts them all.
const maxErrors = 5

// stale reports whether e goes to a destination in one of changes, which
// are sorted and of e's family, and can carry a decision of the old rules.
func stale(changes []nft.Change, e *entry) bool {
	dst := e.destination()
	i, found := slices.BinarySearchFunc(changes, dst, func(ch nft.Change, a netip.Addr) int {
		if ch.Last.Less(a) {
			return -1
		}
		if a.Less(ch.First) {
			return 1
		}
		return 0
	})
	return found && changes[i].Stale(e.translated)
}
