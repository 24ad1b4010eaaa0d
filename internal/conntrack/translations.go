package conntrack

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Translation is one source-NAT translation that conntrack holds: who was
// behind a node address and port.
type Translation struct {
	Proto string
	// Pod is the original source: the sender behind the node's address.
	Pod netip.AddrPort
	// Node is what the source was translated to, as the destination saw it.
	Node netip.AddrPort
	// Dst is the destination (after DNAT, if any).
	Dst netip.AddrPort
}

func (t Translation) String() string {
	return fmt.Sprintf("%s %s -> %s -> %s", t.Proto, t.Pod, t.Node, t.Dst)
}

// TranslationsText is the text form of ts, as `masqd flows` prints it: a
// table with a heading, or a line that says there are none.
func TranslationsText(ts []Translation) string {
	if len(ts) == 0 {
		return "no matching translations in conntrack\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %-45s %-45s %s\n", "PROTO", "POD", "NODE (TRANSLATED)", "DESTINATION")
	for _, t := range ts {
		fmt.Fprintf(&b, "%-7s %-45s %-45s %s\n", t.Proto, t.Pod, t.Node, t.Dst)
	}
	return b.String()
}

// Match selects translations; a zero field matches everything.
type Match struct {
	// Port is the translated source port (as a firewall or abuse report
	// names it).
	Port uint16
	// Pod is the original source address.
	Pod netip.Addr
	// Dst is a destination prefix.
	Dst netip.Prefix
}

// ParseMatch reads the filters of masqd flows, --port, --pod and
// --destination, which its errors name; an empty one matches everything.
func ParseMatch(port, pod, dst string) (Match, error) {
	var m Match
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return m, fmt.Errorf("--port: %q is not a port; give the node's translated source port, 1-65535", port)
		}
		m.Port = uint16(p)
	}
	if pod != "" {
		a, err := netip.ParseAddr(pod)
		if err != nil {
			return m, fmt.Errorf("--pod: %q is not an IP address; give the pod's address", pod)
		}
		m.Pod = a.Unmap()
	}
	if dst != "" {
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			a, aerr := netip.ParseAddr(dst)
			if aerr != nil {
				return m, fmt.Errorf("--destination: %q is neither an address nor a CIDR", dst)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		m.Dst = p.Masked()
	}
	return m, nil
}

func (m Match) matches(t Translation) bool {
	return (m.Port == 0 || t.Node.Port() == m.Port) &&
		(!m.Pod.IsValid() || t.Pod.Addr() == m.Pod) &&
		(!m.Dst.IsValid() || m.Dst.Contains(t.Dst.Addr()))
}

// Translations lists the source-NAT translations in the conntrack table of
// the network namespace at nsPath (the caller's when empty) that m
// selects, sorted by translated address and port. It only reads.
func Translations(ctx context.Context, nsPath string, m Match) ([]Translation, error) {
	ns, err := openNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	if ns != nil {
		defer ns.Close()
	}
	conn, err := dial(ns, dumpBuffer, "conntrack socket")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []Translation
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Only translated entries: the kernel filters.
		err := dump(conn, family, statusSrcNAT, statusSrcNAT, func(e *entry) {
			t := Translation{Proto: ProtoName(e.proto), Pod: e.orig.src, Node: e.reply.dst, Dst: e.reply.src}
			if m.matches(t) {
				out = append(out, t)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("dump conntrack: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b Translation) int {
		return cmp.Or(a.Node.Compare(b.Node), a.Pod.Compare(b.Pod), a.Dst.Compare(b.Dst), cmp.Compare(a.Proto, b.Proto))
	})
	return out, nil
}
