package nft

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/masqd/masqd/internal/config"
)

func build(cidrs ...string) *Ruleset {
	return Build(&config.Config{NonMasqueradeCIDRs: prefixes(cidrs...)}, withOpts(func(o *Options) { o.EnableIPv6 = true }))
}

func TestSyncDelta(t *testing.T) {
	ns, c := netns(t)
	steps := []struct {
		name   string
		rs     *Ruleset
		op     Op
		rules  bool
		change []SetChange
	}{
		{"create", build("10.0.0.0/8", "fd00::/8"), OpCreate, true,
			[]SetChange{{Name: SetV4, Added: 1, Created: true}, {Name: SetV6, Added: 1, Created: true}}},
		{"unchanged", build("10.0.0.0/8", "fd00::/8"), OpNone, false, nil},
		{"add one", build("10.0.0.0/8", "192.0.2.0/24", "fd00::/8"), OpUpdate, false,
			[]SetChange{{Name: SetV4, Added: 1}}},
		// Same start key, different end: the delete and the add share a
		// key within one batch.
		{"narrow", build("10.0.0.0/16", "192.0.2.0/24", "fd00::/8"), OpUpdate, false,
			[]SetChange{{Name: SetV4, Added: 1, Removed: 1}}},
		{"adjacent merge", build("10.0.0.0/16", "10.1.0.0/16", "192.0.2.0/24", "fd00::/8"), OpUpdate, false,
			[]SetChange{{Name: SetV4, Added: 1, Removed: 1}}},
		{"to the top", build("10.0.0.0/16", "128.0.0.0/1", "fd00::/8", "ff00::/8"), OpUpdate, false,
			[]SetChange{{Name: SetV4, Added: 2, Removed: 2}, {Name: SetV6, Added: 1}}},
		{"remove all", build(), OpUpdate, false,
			[]SetChange{{Name: SetV4, Removed: 2}, {Name: SetV6, Removed: 2}}},
		{"rules change", Build(&config.Config{MasqLinkLocal: true}, withOpts(func(o *Options) { o.EnableIPv6 = true })), OpUpdate, true, nil},
	}
	for _, s := range steps {
		res := mustSync(t, c, s.rs)
		if res.Op != s.op || res.Rules != s.rules || !cmp.Equal(res.Sets, s.change) {
			t.Errorf("%s: got op %s rules %v sets %+v, want op %s rules %v sets %+v",
				s.name, res.Op, res.Rules, res.Sets, s.op, s.rules, s.change)
		}
		if res.Op != OpCreate && !res.Cached {
			t.Errorf("%s: sync dumped the table although nothing else committed", s.name)
		}
		if got := canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd")); got != s.rs.String() {
			t.Fatalf("%s: kernel table differs:\n%s", s.name, cmp.Diff(s.rs.String(), got))
		}
	}
}

// TestSyncRepairsDrift changes masqd's table behind its back, as an operator
// or another agent might, and checks that the next sync notices (the
// generation id moved) and restores the ruleset with the smallest change.
func TestSyncRepairsDrift(t *testing.T) {
	rs := build("10.0.0.0/8", "192.0.2.0/24", "fd00::/8")
	cases := []struct {
		name   string
		script string
		op     Op
	}{
		{"table deleted", "delete table inet masqd", OpCreate},
		{"chain flushed", "flush chain inet masqd postrouting", OpUpdate},
		{"element deleted", "delete element inet masqd nomasq-v4 { 192.0.2.0/24 }", OpUpdate},
		{"element added", "add element inet masqd nomasq-v4 { 198.51.100.0/24 }", OpUpdate},
		{"set flushed", "flush set inet masqd nomasq-v6", OpUpdate},
		{"foreign rule", "add rule inet masqd postrouting ip daddr 198.51.100.1 accept", OpUpdate},
		{"rule inserted first", "insert rule inet masqd postrouting counter accept", OpUpdate},
		{"foreign set", "add set inet masqd extra { type ipv4_addr; }", OpUpdate},
		{"foreign set in a foreign rule", "add set inet masqd extra { type ipv4_addr; }; " +
			"add rule inet masqd postrouting ip daddr @extra accept", OpUpdate},
		{"foreign chain", "add chain inet masqd extra", OpReplace},
		{"chain priority", "delete chain inet masqd postrouting; " +
			"add chain inet masqd postrouting { type nat hook postrouting priority srcnat; }", OpReplace},
		{"set type", "delete chain inet masqd postrouting; delete set inet masqd nomasq-v6; " +
			"add set inet masqd nomasq-v6 { type ipv4_addr; flags interval; }", OpReplace},
		{"ruleset flushed", "flush ruleset", OpCreate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns, c := netns(t)
			mustSync(t, c, rs)
			nftIn(t, ns, "", strings.Split(tc.script, " ")...)
			res := mustSync(t, c, rs)
			if res.Op != tc.op || res.Cached {
				t.Errorf("repair: %+v, want op %s from a dump", res, tc.op)
			}
			if got := canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd")); got != rs.String() {
				t.Errorf("kernel table after repair differs:\n%s", cmp.Diff(rs.String(), got))
			}
			if res := mustSync(t, c, rs); res.Op != OpNone {
				t.Errorf("sync after repair: op %s, want none", res.Op)
			}
		})
	}
}

// TestSyncOptionalSets turns masqd's own settings on and off: the source
// sets come and go, and the rules change, in place, whether the planner
// starts from its cache or from a dump. The table is never replaced, so no
// connection sees it re-created.
func TestSyncOptionalSets(t *testing.T) {
	plain := &config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "fd00::/8")}
	extended := &config.Config{
		NonMasqueradeCIDRs:    plain.NonMasqueradeCIDRs,
		MasqueradeCIDRs:       prefixes("10.20.0.0/16"),
		MasqueradeSourceCIDRs: prefixes("10.244.0.0/16", "fd00:244::/64"),
	}
	opts := withOpts(func(o *Options) { o.EnableIPv6 = true })
	snat := withOpts(func(o *Options) { o.EnableIPv6, o.SNATv4 = true, netip.MustParseAddr("192.0.2.10") })
	steps := []*Ruleset{Build(plain, opts), Build(extended, snat), Build(plain, opts), Build(extended, opts)}
	for _, fromDump := range []bool{false, true} {
		ns, c := netns(t)
		mustSync(t, c, steps[0])
		for i, rs := range steps[1:] {
			if fromDump {
				c.Forget()
			}
			res := mustSync(t, c, rs)
			if res.Op != OpUpdate || res.Cached == fromDump {
				t.Errorf("step %d (from dump %t): %+v, want an in-place update", i+1, fromDump, res)
			}
			if got := canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd")); got != rs.String() {
				t.Errorf("step %d (from dump %t): kernel table differs:\n%s", i+1, fromDump, cmp.Diff(rs.String(), got))
			}
		}
	}
}

// TestSync100k checks that a single sync of 100,000 disjoint /32s leaves
// exactly 100,000 intervals in the kernel: google/nftables truncates
// element lists silently, so only a count proves the chunking.
func TestSync100k(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	_, c := netns(t)
	const n = 100_000
	cfg := &config.Config{NonMasqueradeCIDRs: make([]netip.Prefix, 0, n)}
	for i := range n {
		// Every other address, so nothing merges.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 15), byte(i >> 7), byte(i<<1) & 0xff})
		cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, netip.PrefixFrom(a, 32))
	}
	rs := Build(cfg, ipMasqAgentDefaults())
	if got := len(rs.Set(SetV4).Intervals); got != n {
		t.Fatalf("Build made %d intervals, want %d", got, n)
	}
	mustSync(t, c, rs)
	sets := kernelSets(t, c, rs.Table)
	if got := len(sets[SetV4]); got != n {
		t.Fatalf("kernel holds %d intervals, want %d", got, n)
	}
	if !cmp.Equal(sets[SetV4], rs.Set(SetV4).Intervals, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Fatal("kernel intervals differ from the ruleset's")
	}
	// A one-CIDR change on the large set is a delta, not a rewrite.
	cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs[1:], netip.MustParsePrefix("192.0.2.0/24"))
	res := mustSync(t, c, Build(cfg, ipMasqAgentDefaults()))
	if want := []SetChange{{Name: SetV4, Added: 1, Removed: 1}}; !cmp.Equal(res.Sets, want) || !res.Cached {
		t.Errorf("one-CIDR change: %+v, want %+v from the cache", res, want)
	}
}

func TestCounters(t *testing.T) {
	_, c := netns(t)
	rs := build("10.0.0.0/8")
	mustSync(t, c, rs)
	st, err := c.Counters(context.Background(), rs.Table, rs.Chain)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range st.Rules {
		got = append(got, fmt.Sprintf("%s %d", r.Comment, r.Packets))
	}
	var want []string
	for _, r := range rs.Rules {
		want = append(want, r.Comment+" 0")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	if ok, err := c.Delete(context.Background(), rs.Table); err != nil || !ok {
		t.Fatalf("Delete: %v %v", ok, err)
	}
	if ok, err := c.Delete(context.Background(), rs.Table); err != nil || ok {
		t.Fatalf("second Delete: %v %v, want false nil", ok, err)
	}
	if st, err := c.Counters(context.Background(), rs.Table, rs.Chain); err != nil || st.Exists {
		t.Fatalf("Counters after delete: %+v %v", st, err)
	}
}
