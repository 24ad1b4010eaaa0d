package nft

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/internal/config"
)

// loadFiles writes files into a directory of their own, as a ConfigMap
// mount holds them, and loads it.
func loadFiles(t *testing.T, files map[string]string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir, config.Options{EnableIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigHash(t *testing.T) {
	v6 := withOpts(func(o *Options) { o.EnableIPv6 = true })
	base := ConfigHash(loadFiles(t, map[string]string{
		"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\nmasqLinkLocal: true\n",
	}), v6)
	same := []struct {
		name  string
		files map[string]string
		opts  Options
	}{
		{"another order and style", map[string]string{
			"ip-masq-agent": "masqLinkLocal: true\nnonMasqueradeCIDRs:\n  - fd00::/8\n  - 192.0.2.0/24\n  - 10.0.0.0/8\n"}, v6},
		{"JSON", map[string]string{
			"ip-masq-agent": `{"nonMasqueradeCIDRs": ["192.0.2.0/24", "10.0.0.0/8", "fd00::/8"], "masqLinkLocal": true}`}, v6},
		{"split into drop-ins, with a duplicate", map[string]string{
			"a": "nonMasqueradeCIDRs: [192.0.2.0/24, fd00::/8]\n",
			"b": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24]\nmasqLinkLocal: true\n"}, v6},
		{"another node's --snat-address", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\nmasqLinkLocal: true\n"},
			withOpts(func(o *Options) { o.EnableIPv6 = true; o.SNATv4 = netip.MustParseAddr("198.51.100.7") })},
	}
	for _, tc := range same {
		if got := ConfigHash(loadFiles(t, tc.files), tc.opts); got != base {
			t.Errorf("%s: hash %s, want %s as for the same settings", tc.name, got, base)
		}
	}
	differ := []struct {
		name  string
		files map[string]string
		opts  Options
	}{
		{"one CIDR less", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\nmasqLinkLocal: true\n"}, v6},
		{"masqLinkLocal off", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\n"}, v6},
		{"another resync interval", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\nmasqLinkLocal: true\nresyncInterval: 30s\n"}, v6},
		{"an exception", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\nmasqLinkLocal: true\nmasqueradeCIDRs: [10.9.0.0/16]\n"}, v6},
		{"--random-fully=false", map[string]string{
			"ip-masq-agent": "nonMasqueradeCIDRs: [10.0.0.0/8, 192.0.2.0/24, fd00::/8]\nmasqLinkLocal: true\n"},
			withOpts(func(o *Options) { o.EnableIPv6 = true; o.RandomFully = false })},
	}
	seen := map[string]string{base: "base"}
	for _, tc := range differ {
		got := ConfigHash(loadFiles(t, tc.files), tc.opts)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: hash %s, the same as %s", tc.name, got, other)
		}
		seen[got] = tc.name
	}
	if len(base) != 16 {
		t.Errorf("hash %q, want 16 hex digits", base)
	}
}

// TestConfigHashStable pins the hash of one config: nodes running
// different masqd versions during a rollout must agree on it.
func TestConfigHashStable(t *testing.T) {
	cfg := loadFiles(t, map[string]string{
		"ip-masq-agent": "nonMasqueradeCIDRs: [192.0.2.0/24, 10.0.0.0/8, fd00::/8, 10.0.0.0/8]\nmasqueradeCIDRs: [10.9.0.0/16]\nmasqLinkLocal: true\n",
	})
	const want = "65430c7435deafd2"
	if got := ConfigHash(cfg, withOpts(func(o *Options) { o.EnableIPv6 = true })); got != want {
		t.Errorf("hash %s, want %s: a change of the canonical text changes every node's hash", got, want)
	}
}

// TestCanonicalPrefixes checks the canonical list against its definition,
// sorted by address then length with duplicates dropped, on random lists
// in and out of order.
func TestCanonicalPrefixes(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for range 200 {
		ps := make([]netip.Prefix, rng.IntN(40))
		for i := range ps {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), 0})
			if rng.IntN(4) == 0 {
				a = netip.AddrFrom16([16]byte{0xfd, byte(rng.IntN(4))})
			}
			ps[i] = netip.PrefixFrom(a, 8+rng.IntN(17)).Masked()
		}
		if rng.IntN(2) == 0 {
			slices.SortFunc(ps, func(a, b netip.Prefix) int {
				return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
			})
		}
		in := slices.Clone(ps)
		sorted := slices.Clone(ps)
		slices.SortFunc(sorted, func(a, b netip.Prefix) int {
			return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
		})
		var want []string
		for _, p := range slices.Compact(sorted) {
			want = append(want, p.String())
		}
		if got := string(appendPrefixes(nil, ps)); got != strings.Join(want, ",") {
			t.Fatalf("canonical %v:\n got %s\nwant %s", in, got, strings.Join(want, ","))
		}
		if !slices.Equal(ps, in) {
			t.Fatalf("the list was changed in place: %v, was %v", ps, in)
		}
	}
}
