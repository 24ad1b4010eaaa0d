package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The conntrack measurement's scale (issue #15): the config holds ctCIDRs
// prefixes and ctEntries UDP flows are open through the node, ctMoved of
// them to the one prefix that leaves and re-enters the list.
const (
	ctCIDRs   = 100000
	ctEntries = 10000
	ctMoved   = 10
	// ctResyncs is how many no-change resync passes are watched.
	ctResyncs = 5
	// ctResync is the agent's resyncInterval in this measurement.
	ctResync = 300 * time.Millisecond
)

// conntrackRow is the conntrack measurement: one direction of the change.
type conntrackRow struct {
	Op string // "leaves the list" or "back in the list"
	// Took is the reconcile's own "took" from the sync's conntrack field,
	// Sync the sync's "took", Latency the config rename to the log line (ms).
	Took, Sync, Latency []float64
	Examined            []float64
	Removed             int // per change, the same every time
}

// conntrackIdle is the conntrack measurement's no-change resync passes.
type conntrackIdle struct {
	Passes  int
	Took    stat   // the passes' "took" (ms)
	Touched int    // passes whose log line had a conntrack field
	Removed [2]int // masqd_conntrack_entries_removed_total before and after
	Errors  [2]int // masqd_conntrack_reconcile_errors_total before and after
	Live    [2]int // nf_conntrack_count before and after
}

// conntrackResult is everything the conntrack measurement found.
type conntrackResult struct {
	N, Entries, Moved int
	Live              int // nf_conntrack_count once the flows were sent
	Rows              []conntrackRow
	Idle              conntrackIdle
}

// measureConntrack is the conntrack measurement: an agent with its default
// --conntrack-reconcile=udp on ctCIDRs prefixes, ctEntries live UDP flows
// from a pod through the node, one prefix taken out of the list and put
// back; then no-change resync passes, which must not touch conntrack.
func (b *bench) measureConntrack(ctx context.Context) error {
	t, err := b.wireTopo(ctx, toolMasqd, ctCIDRs)
	if err != nil {
		return err
	}
	defer t.Close()
	list := cidrs(ctCIDRs)
	base := configText(formatJSON, list, ctResync.String())
	s, err := b.conntrackSession(ctx, t.node, base)
	if err != nil {
		return err
	}
	if s.a, err = startAgent(agentOptions{bin: b.bin, config: s.path, ns: t.node, metrics: true}); err != nil {
		return err
	}
	defer s.a.stop()
	if _, err := s.a.next(ctx, 60*time.Second, isSynced); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	// Unreplied UDP entries live 30 s by default; the measurement takes
	// longer, and a live flow would refresh its entry anyway.
	if err := t.node.Sysctl(ctx, "net.netfilter.nf_conntrack_udp_timeout", "600"); err != nil {
		return err
	}

	dsts := ctDestinations(list)
	sock, err := podUDPSocket(t.pod)
	if err != nil {
		return err
	}
	defer sock.Close()
	res := &conntrackResult{N: ctCIDRs, Entries: len(dsts), Moved: ctMoved}
	if res.Live, err = sendFlows(ctx, t.node, sock, dsts, len(dsts)); err != nil {
		return err
	}
	flows := ctFlows{node: t.node, sock: sock, dsts: dsts}
	without := configText(formatJSON, list[1:], ctResync.String())
	if res.Rows, err = b.conntrackChanges(ctx, s, flows, list[0], without, base); err != nil {
		return err
	}
	if res.Idle, err = conntrackIdlePasses(ctx, s, t.node); err != nil {
		return err
	}
	b.res.Conntrack = res
	all := append(append([]float64{}, res.Rows[0].Took...), res.Rows[1].Took...)
	b.progress("conntrack: reconcile p50 %.2f ms, p90 %.2f ms over %d changes; %d no-change passes, %d touched conntrack, removed_total %d → %d",
		percentile(all, 50), percentile(all, 90), len(all), res.Idle.Passes, res.Idle.Touched, res.Idle.Removed[0], res.Idle.Removed[1])
	return nil
}

// conntrackSession routes every destination from node to the world
// namespace, which drops what is not its own: the flows need only the
// node's conntrack entry. It writes the config text to the session's path;
// the caller starts the agent.
func (b *bench) conntrackSession(ctx context.Context, node *netns, config string) (*session, error) {
	if err := ipCmd(ctx, "-n", node.name, "route", "add", "default", "via", strings.Split(worldAddr, "/")[0]); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.dir, "conntrack")
	s := &session{ns: node, path: filepath.Join(dir, "config", "ip-masq-agent"), staging: filepath.Join(dir, "staging")}
	for _, d := range []string{filepath.Dir(s.path), s.staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(s.path, []byte(config), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// podUDPSocket is the flows' UDP socket, bound in the pod namespace to
// podAddr port 40000.
func podUDPSocket(pod *netns) (*net.UDPConn, error) {
	var sock *net.UDPConn
	if err := pod.Do(func() error {
		var err error
		sock, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(strings.Split(podAddr, "/")[0]+":40000")))
		return err
	}); err != nil {
		return nil, fmt.Errorf("UDP socket in the pod: %w", err)
	}
	return sock, nil
}

// ctFlows are the measurement's live UDP flows: dsts sent from sock in
// the pod, counted in node's conntrack table.
type ctFlows struct {
	node *netns
	sock *net.UDPConn
	dsts []netip.AddrPort
}

// conntrackChanges publishes without (moved taken out of the list) and
// base (moved back in) in turn, b.plan.ctChanges times each, and checks
// that every change's reconcile removed the ctMoved flows to moved. Rows
// are by direction: leaves the list, then back in the list.
func (b *bench) conntrackChanges(ctx context.Context, s *session, f ctFlows, moved, without, base string) ([]conntrackRow, error) {
	ops := []struct{ name, text string }{{"leaves the list", without}, {"back in the list", base}}
	rows := []conntrackRow{{Op: ops[0].name}, {Op: ops[1].name}}
	for i := range 2 * b.plan.ctChanges {
		k := i % 2
		l, t0, err := s.publish(ctx, ops[k].text, isSynced)
		if err != nil {
			return nil, fmt.Errorf("change %d (%s %s): %w", i+1, moved, ops[k].name, err)
		}
		if l.Conntrack == nil {
			return nil, fmt.Errorf("change %d (%s %s): the sync's log line has no conntrack field, so no reconcile ran: %s", i+1, moved, ops[k].name, tail(l.Raw, 600))
		}
		if l.Conntrack.Removed != ctMoved {
			return nil, fmt.Errorf("change %d (%s %s): the reconcile removed %d entries, want the %d flows to %s: %s", i+1, moved, ops[k].name, l.Conntrack.Removed, ctMoved, moved, tail(l.Raw, 600))
		}
		r := &rows[k]
		r.Took = append(r.Took, ms(l.Conntrack.Took))
		r.Sync = append(r.Sync, ms(l.Took))
		r.Latency = append(r.Latency, ms(l.At.Sub(t0)))
		r.Examined = append(r.Examined, float64(l.Conntrack.Examined))
		r.Removed = l.Conntrack.Removed
		// The moved flows send again, as live flows do: their new
		// entries take the new verdict, and the next change moves them.
		if _, err := sendFlows(ctx, f.node, f.sock, f.dsts[:ctMoved], len(f.dsts)); err != nil {
			return nil, fmt.Errorf("after change %d: %w", i+1, err)
		}
	}
	return rows, nil
}

// conntrackIdlePasses watches ctResyncs no-change resync passes of s's
// agent, with node's conntrack counters and metrics before and after.
func conntrackIdlePasses(ctx context.Context, s *session, node *netns) (conntrackIdle, error) {
	var idle conntrackIdle
	var err error
	if idle.Removed[0], idle.Errors[0], err = scrapeConntrack(node); err != nil {
		return idle, err
	}
	if idle.Live[0], err = conntrackCount(ctx, node); err != nil {
		return idle, err
	}
	s.a.drain()
	var took []float64
	for range ctResyncs {
		l, err := s.a.next(ctx, 10*ctResync+5*time.Second, isResyncPass)
		if err != nil {
			return idle, fmt.Errorf("no-change resync pass: %w", err)
		}
		if l.Conntrack != nil {
			idle.Touched++
		}
		took = append(took, ms(l.Took))
	}
	idle.Passes, idle.Took = len(took), summarize(took)
	if idle.Removed[1], idle.Errors[1], err = scrapeConntrack(node); err != nil {
		return idle, err
	}
	if idle.Live[1], err = conntrackCount(ctx, node); err != nil {
		return idle, err
	}
	return idle, nil
}

// ctDestinations are ctEntries UDP destinations: ctMoved in list[0] (the
// prefix that changes), then alternately one inside another prefix of the
// list (not masqueraded) and one in 10.200.0.0/16, outside every prefix
// (masqueraded), so both kinds of entry are in the table.
func ctDestinations(list []string) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, ctEntries)
	first := netip.MustParsePrefix(list[0]).Addr()
	for i := range ctMoved {
		a := first
		for range i + 1 {
			a = a.Next()
		}
		out = append(out, netip.AddrPortFrom(a, 5000))
	}
	for i := 0; len(out) < ctEntries; i++ {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.MustParsePrefix(list[1+(i/2)*7%(len(list)-1)]).Addr().Next()
		} else {
			a = netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)})
		}
		out = append(out, netip.AddrPortFrom(a, 5000))
	}
	return out
}

// sendFlows sends one datagram from sock to each destination, so the node
// has a conntrack entry for each, and waits until the node counts at least
// want entries. It resends while the count is short: a burst can overflow
// the veth's backlog, and a resend only refreshes entries that exist.
func sendFlows(ctx context.Context, node *netns, sock *net.UDPConn, dsts []netip.AddrPort, want int) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, d := range dsts {
			if _, err := sock.WriteToUDPAddrPort([]byte("masqd-bench"), d); err != nil {
				return 0, fmt.Errorf("send to %s: %w", d, err)
			}
		}
		n, err := conntrackCount(ctx, node)
		if err != nil {
			return 0, err
		}
		if n >= want {
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return n, fmt.Errorf("the node holds %d conntrack entries after 10 s of sending, want at least %d", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// conntrackCount is the number of conntrack entries in ns.
func conntrackCount(ctx context.Context, ns *netns) (int, error) {
	out, err := output(ctx, ns, "cat", "/proc/sys/net/netfilter/nf_conntrack_count")
	if err != nil {
		return 0, fmt.Errorf("count conntrack entries: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("nf_conntrack_count: %w", err)
	}
	return n, nil
}

// scrapeConntrack reads the agent's conntrack counters from its metrics
// listener in ns (summed over labels; a counter not yet created is 0).
func scrapeConntrack(ns *netns) (removed, errs int, err error) {
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", metricsAddr, 5*time.Second)
		return err
	}); err != nil {
		return 0, 0, fmt.Errorf("connect to the agent's metrics in %s: %w", ns.name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.NewRequest(http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, 0, fmt.Errorf("ask for metrics: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *int
		switch {
		case strings.HasPrefix(line, "masqd_conntrack_entries_removed_total"):
			dst = &removed
		case strings.HasPrefix(line, "masqd_conntrack_reconcile_errors_total"):
			dst = &errs
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		*dst += int(v)
	}
	return removed, errs, sc.Err()
}

// ctAll is every change's value of pick, both directions.
func ctAll(c *conntrackResult, pick func(conntrackRow) []float64) []float64 {
	var out []float64
	for _, r := range c.Rows {
		out = append(out, pick(r)...)
	}
	return out
}

func ctTook(r conntrackRow) []float64 { return r.Took }

func conntrackChecks(r *results) []check {
	c := r.Conntrack
	if c == nil {
		return nil
	}
	took := ctAll(c, ctTook)
	p50, p90 := percentile(took, 50), percentile(took, 90)
	idle := c.Idle
	untouched := idle.Touched == 0 && idle.Removed[0] == idle.Removed[1] && idle.Errors[0] == idle.Errors[1]
	return []check{
		{fmt.Sprintf("one CIDR at %s with %s live UDP entries: conntrack reconcile (the sync's `conntrack.took`, p50 / p90 of %d changes)", count(c.N), count(c.Entries), len(took)),
			"< 50 ms", fmt.Sprintf("%s / %s ms", fmtMS(p50), fmtMS(p90)), len(took) > 0 && p90 < 50,
			"The reconcile dumps the conntrack entries of the changed family, filtered in the kernel by NAT status where the change allows, and checks each against the changed ranges; its time grows with the live entries it examines (section 8), not with the CIDRs."},
		{fmt.Sprintf("no-change resync at %s with %s live entries: conntrack work", count(c.N), count(c.Entries)), "none",
			fmt.Sprintf("%d of %d passes; removed_total %d → %d", idle.Touched, idle.Passes, idle.Removed[0], idle.Removed[1]), untouched,
			"A resync pass reconciled conntrack although nothing changed: the agent compares the ruleset before and after each sync and should skip the reconcile when no verdict changed."},
	}
}

func renderConntrack(d *doc, r *results) {
	d.p("## 8. Open flows after a change: conntrack reconcile")
	c := r.Conntrack
	if c == nil {
		d.p("Not measured in this run.")
		return
	}
	d.p("Issue #15's scale: the agent (default `--conntrack-reconcile=udp`, started inside the node namespace so that its metrics listener is that namespace's own) runs on the node of a pod–node–world topology as in section 5, with %s CIDRs and `resyncInterval: %s`. "+
		"The pod sends one UDP datagram from port 40000 to each of %s destinations, real packets forwarded by the node, so every conntrack entry is made by the kernel and decided by masqd's rules (entries injected over netlink would skip the NAT decision, and the point is entries the ruleset decided): %d to `%s`, the CIDR that changes, half of the rest to other CIDRs of the list (not masqueraded) and half to 10.200.0.0/16 (masqueraded). "+
		"The world namespace routes them nowhere; the entries stay unreplied, and the node's `nf_conntrack_udp_timeout` is raised to 600 s so that none expires during the run. The node counted %s entries (`nf_conntrack_count`). "+
		"Then the harness renames a config without `%s` into place, and back, %d times each, as in section 3; each change must remove exactly the %d entries to that CIDR (the harness fails otherwise), and the pod sends to those %d destinations again after each change, so the next change finds them under the new verdict, and the harness waits until the node counts all entries again. "+
		"The figures are the fields of the agent's `synced` line: `conntrack.took` (the dump, the check and the deletions, after the kernel acknowledged the rules), `conntrack.examined`, and the sync's own `took`; *write → log line* is from the rename to that line, which the agent writes after the reconcile.",
		count(c.N), ctResync, count(c.Entries), c.Moved, cidrs(1)[0], count(c.Live), cidrs(1)[0], r.Plan.ctChanges, c.Moved, c.Moved)
	var rows [][]string
	for _, row := range c.Rows {
		rows = append(rows, []string{"`" + cidrs(1)[0] + "` " + row.Op, fmt.Sprint(len(row.Took)),
			"**" + fmtMS(percentile(row.Took, 50)) + "** / " + fmtMS(percentile(row.Took, 90)),
			count(int(percentile(row.Examined, 50))), fmt.Sprint(row.Removed),
			fmtMS(percentile(row.Sync, 50)) + " / " + fmtMS(percentile(row.Sync, 90)),
			fmtMS(percentile(row.Latency, 50)) + " / " + fmtMS(percentile(row.Latency, 90))})
	}
	all := func(pick func(conntrackRow) []float64) string {
		xs := ctAll(c, pick)
		return fmtMS(percentile(xs, 50)) + " / " + fmtMS(percentile(xs, 90))
	}
	took := ctAll(c, ctTook)
	rows = append(rows, []string{"both", fmt.Sprint(len(took)), "**" + all(ctTook) + "**", "—", "—",
		all(func(r conntrackRow) []float64 { return r.Sync }), all(func(r conntrackRow) []float64 { return r.Latency })})
	d.table([]string{"change", "changes", "reconcile `took` p50 / p90 (ms)", "examined (median)", "removed", "sync `took` p50 / p90 (ms)", "write → log line p50 / p90 (ms)"}, rows)
	idle := c.Idle
	d.p("**No change.** With the config as it was, the harness then watched %d resync passes (`in sync; nothing changed`, `took` %s ms median): %d of them carried a `conntrack` field, which the agent adds whenever it reconciled. "+
		"Its metrics, scraped before and after: `masqd_conntrack_entries_removed_total` %d → %d, `masqd_conntrack_reconcile_errors_total` %d → %d; the node's entries %s → %s (each scrape is a TCP connection on the node's loopback, with an entry of its own).",
		idle.Passes, fmtMS(idle.Took.Med), idle.Touched, idle.Removed[0], idle.Removed[1], idle.Errors[0], idle.Errors[1], count(idle.Live[0]), count(idle.Live[1]))
	var b strings.Builder
	fmt.Fprintf(&b, "A one-CIDR change reconciles in %s ms at the median and %s ms at p90 with %s live entries, while %s CIDRs are in the list. ", fmtMS(percentile(took, 50)), fmtMS(percentile(took, 90)), count(c.Entries), count(c.N))
	b.WriteString("The two directions differ in what the kernel sends: a CIDR that leaves the list makes un-masqueraded entries stale, so the dump asks for entries without source NAT (the pod's flows to the list and to the changed CIDR); one that comes back makes masqueraded entries stale, so the dump asks for those with source NAT. The examined column is that count; the cost is that dump and a check of each entry against the changed ranges, then one delete per stale entry. ")
	b.WriteString("A resync that changes nothing makes no conntrack call at all: the agent computes the changed ranges from the rulesets before and after, finds none and opens no conntrack socket.")
	d.p("**Reading.** %s", b.String())
}
