package nft

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/masqd/masqd/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.nft from the current Build output")

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

var rfc1918 = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

// ipMasqAgentDefaults are the options of masqd run without flags.
func ipMasqAgentDefaults() Options {
	return Options{Table: DefaultTable, Chain: DefaultChain, RandomFully: true}
}

func withOpts(f func(*Options)) Options {
	o := ipMasqAgentDefaults()
	f(&o)
	return o
}

// goldenCases pin the ruleset for every config field and option. Each name
// is a file testdata/NAME.nft.
var goldenCases = []struct {
	name string
	cfg  config.Config
	opts Options
}{
	{"default", config.Config{NonMasqueradeCIDRs: rfc1918}, ipMasqAgentDefaults()},
	{"empty-list", config.Config{}, ipMasqAgentDefaults()},
	{"masq-link-local", config.Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true}, ipMasqAgentDefaults()},
	{"reserved-ranges", config.Config{NonMasqueradeCIDRs: prefixes(
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24",
		"192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4")}, ipMasqAgentDefaults()},
	{"merged", config.Config{NonMasqueradeCIDRs: prefixes(
		"10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8", "192.0.2.7/32", "192.0.2.8/32")}, ipMasqAgentDefaults()},
	{"everything", config.Config{NonMasqueradeCIDRs: prefixes("0.0.0.0/0", "::/0")}, withOpts(func(o *Options) { o.EnableIPv6 = true })},
	{"ipv6", config.Config{NonMasqueradeCIDRs: append(prefixes("fd00::/8", "2001:db8::/32", "2001:db8:1::/48"), rfc1918...)},
		withOpts(func(o *Options) { o.EnableIPv6 = true })},
	{"ipv6-masq-link-local", config.Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "fd00::/8"), MasqLinkLocalIPv6: true},
		withOpts(func(o *Options) { o.EnableIPv6 = true })},
	{"not-random-fully", config.Config{NonMasqueradeCIDRs: rfc1918}, withOpts(func(o *Options) { o.RandomFully = false })},
	{"names", config.Config{NonMasqueradeCIDRs: rfc1918}, withOpts(func(o *Options) { o.Table, o.Chain = "egress", "IP-MASQ-AGENT" })},
	// masqd's own settings, beyond ip-masq-agent's.
	{"exceptions", config.Config{
		NonMasqueradeCIDRs: append(prefixes("10.20.30.0/24", "fd00::/8"), rfc1918...),
		MasqueradeCIDRs:    prefixes("10.20.0.0/16", "192.168.7.0/24", "169.254.169.254/32", "fd00:1::/32", "192.168.0.0/16"),
	}, withOpts(func(o *Options) { o.EnableIPv6 = true })},
	{"source-cidrs", config.Config{NonMasqueradeCIDRs: rfc1918, MasqueradeSourceCIDRs: prefixes("10.244.0.0/16", "10.245.0.0/16", "fd00:244::/64")},
		withOpts(func(o *Options) { o.EnableIPv6 = true })},
	{"snat", config.Config{NonMasqueradeCIDRs: rfc1918}, withOpts(func(o *Options) { o.SNATv4 = netip.MustParseAddr("192.0.2.10") })},
	{"snat-dual-stack", config.Config{NonMasqueradeCIDRs: append(prefixes("fd00::/8"), rfc1918...)}, withOpts(func(o *Options) {
		o.EnableIPv6, o.RandomFully = true, false
		o.SNATv4, o.SNATv6 = netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")
	})},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(&tc.cfg, tc.opts).String()
			path := filepath.Join("testdata", tc.name+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Build(%s) mismatch (-want +got), rerun with -update if intended:\n%s", tc.name, diff)
			}
		})
	}
}

// TestGoldenCoversEveryKnob fails when a config field or option is added
// without a golden case that sets it to a non-default value.
func TestGoldenCoversEveryKnob(t *testing.T) {
	def := ipMasqAgentDefaults()
	covered := map[string]bool{}
	for _, tc := range goldenCases {
		cv := reflect.ValueOf(tc.cfg)
		for i := range cv.NumField() {
			if !cv.Field(i).IsZero() {
				covered["config."+cv.Type().Field(i).Name] = true
			}
		}
		ov, dv := reflect.ValueOf(tc.opts), reflect.ValueOf(def)
		for i := range ov.NumField() {
			if !reflect.DeepEqual(ov.Field(i).Interface(), dv.Field(i).Interface()) {
				covered["Options."+ov.Type().Field(i).Name] = true
			}
		}
	}
	// Fields that do not shape the ruleset.
	irrelevant := map[string]bool{"config.ResyncInterval": true, "config.CIDRLimit": true, "config.Files": true, "config.sources": true, "config.warnings": true}
	for _, typ := range []reflect.Type{reflect.TypeFor[config.Config](), reflect.TypeFor[Options]()} {
		prefix := "config."
		if typ == reflect.TypeFor[Options]() {
			prefix = "Options."
		}
		for i := range typ.NumField() {
			name := prefix + typ.Field(i).Name
			if !covered[name] && !irrelevant[name] {
				t.Errorf("no golden case sets %s: add one to goldenCases", name)
			}
		}
	}
}
