package conntrack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/netnstest"
	"github.com/masqd/masqd/internal/nft"
	"github.com/masqd/masqd/test/e2e/testbed"
)

// Flows of the kernel tests send every 100 ms, as the DNS forwarder,
// game or telemetry flows do.
const flowInterval = 100 * time.Millisecond

func newBed(t *testing.T) *testbed.Bed {
	t.Helper()
	if testing.Short() {
		t.Skip("kernel test skipped in -short mode")
	}
	if why := testbed.Skip(); why != "" {
		t.Skip("kernel test skipped: " + why)
	}
	b, err := testbed.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("remove bed: %v", err)
		}
	})
	e, err := b.StartEcho()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return b
}

func ruleset(cidrs ...string) *nft.Ruleset {
	var ps []netip.Prefix
	for _, s := range cidrs {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	opts := nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}
	opts.EnableIPv6 = true
	return nft.Build(&config.Config{NonMasqueradeCIDRs: ps}, opts)
}

// The change under test, in both directions and both families:
// 192.168.5.10 and fd00:96::10 become masqueraded, 11.11.11.11 and
// 2001:db8:1::10 become exempt; 10.96.0.10 and 203.0.113.10 stay as they
// were.
var (
	before = ruleset("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8")
	after  = ruleset("10.0.0.0/8", "172.16.0.0/12", "11.11.11.11/32", "fd00:115::/64", "fd00:244::/32", "2001:db8::/32")
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func apply(t *testing.T, c *nft.Conn, rs *nft.Ruleset) {
	t.Helper()
	if _, err := c.Sync(context.Background(), rs); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func startUDP(t *testing.T, b *testbed.Bed, port uint16, dst string) *testbed.Flow {
	t.Helper()
	f, err := b.StartUDPFlow(port, addr(dst), flowInterval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func startTCP(t *testing.T, b *testbed.Bed, dst string) *testbed.Flow {
	t.Helper()
	f, err := b.StartTCPFlow(addr(dst), flowInterval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// waitSource fails the test unless the world sees want as f's source
// within d.
func waitSource(t *testing.T, name string, f *testbed.Flow, want netip.Addr, d time.Duration) time.Time {
	t.Helper()
	at, err := f.WaitSource(context.Background(), want, time.Now(), d)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return at
}

// entryIDs returns the conntrack IDs of the entries in namespace ns, by
// the pod's source port.
func entryIDs(t *testing.T, ns string) map[uint16]uint32 {
	t.Helper()
	f, err := os.Open(netnstest.Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ct.Dial(&netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		t.Fatalf("dump conntrack in %s: %v", ns, err)
	}
	ids := map[uint16]uint32{}
	for _, fl := range flows {
		ids[fl.TupleOrig.Proto.SourcePort] = fl.ID
	}
	return ids
}

func open(t *testing.T, b *testbed.Bed, mode Mode) (*nft.Conn, *Conn) {
	t.Helper()
	nc, err := nft.Open(b.NodePath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cc, err := Open(b.NodePath(), mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return nc, cc
}

// TestReconcile moves flows whose destination changed verdict, in both
// directions and families, and leaves every other entry alone: unrelated
// flows, masqueraded or not, and TCP in the default mode.
func TestReconcile(t *testing.T) {
	b := newBed(t)
	nc, cc := open(t, b, UDP)
	apply(t, nc, before)

	toMasq4 := startUDP(t, b, 40000, "192.168.5.10")
	toExempt4 := startUDP(t, b, 40001, "11.11.11.11")
	toMasq6 := startUDP(t, b, 40002, "fd00:96::10")
	toExempt6 := startUDP(t, b, 40003, "2001:db8:1::10")
	same4 := startUDP(t, b, 40004, "10.96.0.10")
	sameMasq4 := startUDP(t, b, 40005, "203.0.113.10")
	tcp := startTCP(t, b, "192.168.5.10")
	const settle = 5 * time.Second
	waitSource(t, "udp to 192.168.5.10 before", toMasq4, testbed.PodIP4, settle)
	waitSource(t, "udp to 11.11.11.11 before", toExempt4, testbed.NodeIP4, settle)
	waitSource(t, "udp to fd00:96::10 before", toMasq6, testbed.PodIP6, settle)
	waitSource(t, "udp to 2001:db8:1::10 before", toExempt6, testbed.NodeIP6, settle)
	waitSource(t, "udp to 10.96.0.10", same4, testbed.PodIP4, settle)
	waitSource(t, "udp to 203.0.113.10", sameMasq4, testbed.NodeIP4, settle)
	waitSource(t, "tcp to 192.168.5.10 before", tcp, testbed.PodIP4, settle)
	idsBefore := entryIDs(t, b.NodeNS)

	apply(t, nc, after)
	// Without reconciling, the active flows keep their old decision.
	time.Sleep(5 * flowInterval)
	if s := toMasq4.Seen(); len(s) != 1 {
		t.Fatalf("udp to 192.168.5.10 moved before any entry was removed: %v", s)
	}

	synced := time.Now()
	res, err := cc.Reconcile(context.Background(), before, after)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	t.Logf("reconcile took %s, examined %d entries, removed %v", res.Took, res.Examined, res.Removed)
	if res.Removed["udp"] != 4 || len(res.Removed) != 1 || res.Failed != 0 {
		t.Errorf("removed %v, %d failed; want udp:4 and nothing else", res.Removed, res.Failed)
	}
	for _, c := range []struct {
		name string
		f    *testbed.Flow
		want netip.Addr
	}{
		{"udp to 192.168.5.10", toMasq4, testbed.NodeIP4},
		{"udp to 11.11.11.11", toExempt4, testbed.PodIP4},
		{"udp to fd00:96::10", toMasq6, testbed.NodeIP6},
		{"udp to 2001:db8:1::10", toExempt6, testbed.PodIP6},
	} {
		if at := waitSource(t, c.name, c.f, c.want, 3*time.Second); at.Sub(synced) > time.Second {
			t.Errorf("%s: the world saw the new source %s %s after the sync, want within 1s", c.name, c.want, at.Sub(synced))
		}
	}
	time.Sleep(5 * flowInterval)
	idsAfter := entryIDs(t, b.NodeNS)
	for _, port := range []uint16{40004, 40005} {
		if idsBefore[port] == 0 || idsBefore[port] != idsAfter[port] {
			t.Errorf("the entry of the unrelated flow from port %d changed: id %d, now %d", port, idsBefore[port], idsAfter[port])
		}
	}
	for name, f := range map[string]*testbed.Flow{"udp to 10.96.0.10": same4, "udp to 203.0.113.10": sameMasq4, "tcp to 192.168.5.10": tcp} {
		if s := f.Seen(); len(s) != 1 {
			t.Errorf("%s: the world saw its source change: %v", name, s)
		}
	}
	if n := tcp.Resets(); n != 0 {
		t.Errorf("tcp to 192.168.5.10: %d resets in the default mode, want 0", n)
	}

	// A resync that changes nothing does no conntrack work.
	res, err = cc.Reconcile(context.Background(), after, after)
	if err != nil || res.Examined != 0 || res.Total() != 0 || len(res.Changes) != 0 {
		t.Errorf("no-change reconcile: examined %d, removed %v, changes %v, err %v; want no work", res.Examined, res.Removed, res.Changes, err)
	}
}

// TestReconcileAll moves TCP connections too: the client sees a reset and
// reconnects under the new verdict.
func TestReconcileAll(t *testing.T) {
	b := newBed(t)
	nc, cc := open(t, b, All)
	apply(t, nc, before)
	tcp := startTCP(t, b, "192.168.5.10")
	waitSource(t, "tcp to 192.168.5.10 before", tcp, testbed.PodIP4, 5*time.Second)

	apply(t, nc, after)
	res, err := cc.Reconcile(context.Background(), before, after)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if res.Removed["tcp"] != 1 {
		t.Errorf("removed %v, want tcp:1", res.Removed)
	}
	waitSource(t, "tcp to 192.168.5.10 after", tcp, testbed.NodeIP4, 10*time.Second)
	if tcp.Resets() == 0 {
		t.Errorf("the tcp flow moved to the new source without a reset")
	}
}

// TestReconcileForeignSNAT: a flow another table translates at an earlier
// priority, as kube-proxy's rules do. To a destination that becomes
// masqueraded, masqd leaves the entry alone (masqd did not translate it
// before, so the translation is not masqd's). To one that becomes exempt,
// masqd cannot tell its translations from others and removes the entry;
// the next packet goes through the foreign rule first again and gets the
// same source.
func TestReconcileForeignSNAT(t *testing.T) {
	b := newBed(t)
	nc, cc := open(t, b, UDP)
	apply(t, nc, before)
	const foreign = `
table ip foreign {
	chain postrouting {
		type nat hook postrouting priority srcnat - 10; policy accept;
		udp sport { 40010, 40011 } snat ip to 100.115.0.3
	}
}`
	if out, err := b.Exec(context.Background(), b.NodeNS, "ip", "addr", "add", "100.115.0.3/24", "dev", "n1"); err != nil {
		t.Fatalf("add address: %v: %s", err, out)
	}
	if _, err := netnstest.Nft(b.NodeNS, foreign, "-f", "-"); err != nil {
		t.Fatal(err)
	}
	snat := addr("100.115.0.3")
	toMasq := startUDP(t, b, 40010, "192.168.5.10")
	toExempt := startUDP(t, b, 40011, "11.11.11.11")
	waitSource(t, "foreign-translated udp to 192.168.5.10", toMasq, snat, 5*time.Second)
	waitSource(t, "foreign-translated udp to 11.11.11.11", toExempt, snat, 5*time.Second)
	idsBefore := entryIDs(t, b.NodeNS)

	apply(t, nc, after)
	res, err := cc.Reconcile(context.Background(), before, after)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if res.Removed["udp"] != 1 {
		t.Errorf("removed %v, want udp:1 (the entry to the newly exempt destination)", res.Removed)
	}
	time.Sleep(10 * flowInterval)
	if id := entryIDs(t, b.NodeNS)[40010]; id != idsBefore[40010] {
		t.Errorf("the foreign translation to a newly masqueraded destination was replaced: id %d, now %d", idsBefore[40010], id)
	}
	for name, f := range map[string]*testbed.Flow{"to 192.168.5.10": toMasq, "to 11.11.11.11": toExempt} {
		s := f.Seen()
		if len(s) != 1 || s[0].Source.Addr() != snat {
			t.Errorf("foreign-translated udp %s: the world saw %v, want %s throughout", name, s, snat)
		}
		if since := time.Since(f.LastReply()); since > 5*flowInterval {
			t.Errorf("foreign-translated udp %s: no reply for %s", name, since)
		}
	}
}

// TestReconcileFiltersInKernel: when a change only makes untranslated
// entries stale (destinations that become masqueraded), the kernel sends
// only untranslated entries.
func TestReconcileFiltersInKernel(t *testing.T) {
	b := newBed(t)
	nc, cc := open(t, b, UDP)
	apply(t, nc, before)
	moved := startUDP(t, b, 40000, "192.168.5.10")
	peer := startUDP(t, b, 40001, "10.96.0.10")
	masq := startUDP(t, b, 40002, "203.0.113.10")
	waitSource(t, "udp to 192.168.5.10", moved, testbed.PodIP4, 5*time.Second)
	waitSource(t, "udp to 10.96.0.10", peer, testbed.PodIP4, 5*time.Second)
	waitSource(t, "udp to 203.0.113.10", masq, testbed.NodeIP4, 5*time.Second)

	exemptToMasq := ruleset("10.0.0.0/8", "172.16.0.0/12", "fd00::/8")
	apply(t, nc, exemptToMasq)
	res, err := cc.Reconcile(context.Background(), before, exemptToMasq)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if res.Examined != 2 || res.Removed["udp"] != 1 {
		t.Errorf("examined %d entries and removed %v; want the 2 untranslated ones examined (the masqueraded one filtered out by the kernel) and udp:1 removed", res.Examined, res.Removed)
	}
	waitSource(t, "udp to 192.168.5.10 after", moved, testbed.NodeIP4, 3*time.Second)
}

// TestTranslations names the pod behind a translated port.
func TestTranslations(t *testing.T) {
	b := newBed(t)
	nc, _ := open(t, b, UDP)
	apply(t, nc, before)
	masq := startUDP(t, b, 40002, "203.0.113.10")
	startUDP(t, b, 40003, "11.11.11.11")
	startUDP(t, b, 40004, "10.96.0.10") // not translated
	waitSource(t, "udp to 203.0.113.10", masq, testbed.NodeIP4, 5*time.Second)
	seen := masq.Seen()[0].Source

	all, err := Translations(context.Background(), b.NodePath(), Match{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("translations %v, want the 2 masqueraded flows", all)
	}
	got, err := Translations(context.Background(), b.NodePath(), Match{Port: seen.Port()})
	if err != nil {
		t.Fatal(err)
	}
	want := Translation{Proto: "udp", Pod: netip.AddrPortFrom(testbed.PodIP4, 40002), Node: seen, Dst: netip.MustParseAddrPort("203.0.113.10:7778")}
	if len(got) != 1 || got[0] != want {
		t.Errorf("translations of port %d: %v, want [%v]", seen.Port(), got, want)
	}
	for _, m := range []Match{{Pod: testbed.PodIP4, Dst: netip.MustParsePrefix("203.0.113.0/24")}, {Dst: netip.MustParsePrefix("203.0.113.10/32")}} {
		if got, err := Translations(context.Background(), b.NodePath(), m); err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("translations matching %+v: %v, %v; want [%v]", m, got, err, want)
		}
	}
}

// syncBuffer is a bytes.Buffer for one writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTranslationLog: every one of many short masqueraded connections gets
// a start and an end line; untranslated ones get none.
func TestTranslationLog(t *testing.T) {
	const conns = 1100 // 1,000 translated, 100 exempt
	b := newBed(t)
	nc, _ := open(t, b, UDP)
	apply(t, nc, before)
	var out syncBuffer
	tl, err := NewTranslationLog(b.NodePath(), &out, 4096)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("translation log: %v", err)
		}
	}()
	// Run has joined the groups once a first event shows up.
	waitLines(t, &out, 1, func() {
		if _, err := b.SourceSeen(context.Background(), addr("203.0.113.10")); err != nil {
			t.Fatal(err)
		}
	})
	start := time.Now()
	for i := range conns {
		dst := "11.11.11.11"
		if i%11 == 0 {
			dst = "10.96.0.10" // exempt: no translation, no line
		}
		if _, err := b.SourceSeen(context.Background(), addr(dst)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	t.Logf("%d connections in %s", conns, time.Since(start))
	translated := conns - conns/11 + 1 // and the first one
	// End the connections' entries at once: conntrack's garbage collector
	// is shared by every namespace of the machine and may take a minute to
	// reap them (test/e2e waits for that, with the real binary).
	flushIn(t, b.NodeNS)
	deadline := time.Now().Add(10 * time.Second)
	for tl.Ends.Load() < uint64(translated) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	starts, ends := map[uint32]logLine{}, map[uint32]logLine{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if netip.MustParseAddrPort(ll.Pod).Addr() != testbed.PodIP4 || netip.MustParseAddrPort(ll.Node).Addr() != testbed.NodeIP4 || ll.Proto != "tcp" {
			t.Errorf("unexpected line %s", l)
		}
		map[string]map[uint32]logLine{"start": starts, "end": ends}[ll.Event][ll.ID] = ll
	}
	lost := tl.KernelOverflows.Load() + tl.BufferDrops.Load()
	t.Logf("%d start and %d end lines for %d translated connections; %d kernel overflows, %d buffer drops", len(starts), len(ends), translated, tl.KernelOverflows.Load(), tl.BufferDrops.Load())
	if lost == 0 && (len(starts) != translated || len(ends) != translated) {
		t.Errorf("%d start and %d end lines, want %d of each and nothing lost", len(starts), len(ends), translated)
	}
	for id, s := range starts {
		if e, ok := ends[id]; lost == 0 && (!ok || e.Pod != s.Pod || e.Node != s.Node || e.Dst != s.Dst) {
			t.Errorf("start %+v has end %+v", s, e)
		}
	}
}

// flushIn removes every conntrack entry of namespace ns.
func flushIn(t *testing.T, ns string) {
	t.Helper()
	f, err := os.Open(netnstest.Path(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ct.Dial(&netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Flush(); err != nil {
		t.Fatalf("flush conntrack in %s: %v", ns, err)
	}
}

// waitLines runs act until out holds at least n lines, for up to 5s.
func waitLines(t *testing.T, out *syncBuffer, n int, act func()) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %d translation log lines; have:\n%s", n, out.String())
		}
		act()
		time.Sleep(50 * time.Millisecond)
	}
}
