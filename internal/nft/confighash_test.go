package nft

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

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
