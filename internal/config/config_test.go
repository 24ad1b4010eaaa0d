package config

import (
	"net/netip"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}},
		{Options{EnableIPv6: true}, []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}},
		{Options{NoMasqAllReservedRanges: true}, []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
			"100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
			"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4"}},
	}
	for _, tt := range tests {
		got := Default(tt.opts)
		want := &Config{NonMasqueradeCIDRs: prefixes(tt.want...), ResyncInterval: 60 * time.Second}
		if !got.Equal(want) || got.Files != nil {
			t.Errorf("Default(%+v) = %+v, want %+v", tt.opts, got, want)
		}
	}
	// Each call returns its own list.
	a := Default(Options{})
	a.NonMasqueradeCIDRs[0] = netip.MustParsePrefix("192.0.2.0/24")
	if b := Default(Options{}); b.NonMasqueradeCIDRs[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("Default shares its list between calls: %v", b.NonMasqueradeCIDRs)
	}
}

func TestEqual(t *testing.T) {
	base := func() *Config {
		return &Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "fd00::/8"), MasqLinkLocal: true,
			ResyncInterval: time.Minute, CIDRLimit: 5, Files: []string{"a"}}
	}
	tests := []struct {
		name   string
		change func(*Config)
		equal  bool
	}{
		{"same", func(*Config) {}, true},
		{"other files", func(c *Config) { c.Files = []string{"b", "c"} }, true},
		{"other CIDR", func(c *Config) { c.NonMasqueradeCIDRs[1] = netip.MustParsePrefix("fd00::/9") }, false},
		{"other order", func(c *Config) { c.NonMasqueradeCIDRs = prefixes("fd00::/8", "10.0.0.0/8") }, false},
		{"fewer CIDRs", func(c *Config) { c.NonMasqueradeCIDRs = c.NonMasqueradeCIDRs[:1] }, false},
		{"masqLinkLocal", func(c *Config) { c.MasqLinkLocal = false }, false},
		{"masqLinkLocalIPv6", func(c *Config) { c.MasqLinkLocalIPv6 = true }, false},
		{"resyncInterval", func(c *Config) { c.ResyncInterval = time.Second }, false},
		{"cidrLimit", func(c *Config) { c.CIDRLimit = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.change(b)
			if got := a.Equal(b); got != tt.equal {
				t.Errorf("Equal = %t, want %t", got, tt.equal)
			}
			if got := b.Equal(a); got != tt.equal {
				t.Errorf("Equal reversed = %t, want %t", got, tt.equal)
			}
		})
	}
	empty, none := &Config{NonMasqueradeCIDRs: []netip.Prefix{}}, &Config{}
	if !empty.Equal(none) {
		t.Error("an empty list does not equal a nil one")
	}
	var nilCfg *Config
	if nilCfg.Equal(base()) || base().Equal(nil) || !nilCfg.Equal(nil) {
		t.Error("Equal mishandles nil")
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		cfg  *Config
		want string
	}{
		{&Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute, Files: []string{"/etc/config/ip-masq-agent"}},
			"3 nonMasqueradeCIDRs (3 IPv4, 0 IPv6), masqLinkLocal=false, masqLinkLocalIPv6=false, resyncInterval=60s, cidrLimit=none, from /etc/config/ip-masq-agent"},
		{&Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "fd00::/8", "::/0"), MasqLinkLocal: true, MasqLinkLocalIPv6: true,
			ResyncInterval: 1500 * time.Millisecond, CIDRLimit: 64, Files: []string{"/c/a", "/c/b"}},
			"3 nonMasqueradeCIDRs (1 IPv4, 2 IPv6), masqLinkLocal=true, masqLinkLocalIPv6=true, resyncInterval=1.5s, cidrLimit=64, from /c/a, /c/b"},
		{Default(Options{}),
			"3 nonMasqueradeCIDRs (3 IPv4, 0 IPv6), masqLinkLocal=false, masqLinkLocalIPv6=false, resyncInterval=60s, cidrLimit=none, from defaults (no config file)"},
		{&Config{NonMasqueradeCIDRs: []netip.Prefix{}, ResyncInterval: 500 * time.Millisecond, Files: []string{"x"}},
			"0 nonMasqueradeCIDRs (0 IPv4, 0 IPv6), masqLinkLocal=false, masqLinkLocalIPv6=false, resyncInterval=500ms, cidrLimit=none, from x"},
		{&Config{ResyncInterval: 90 * time.Minute},
			"0 nonMasqueradeCIDRs (0 IPv4, 0 IPv6), masqLinkLocal=false, masqLinkLocalIPv6=false, resyncInterval=5400s, cidrLimit=none, from defaults (no config file)"},
	}
	for _, tt := range tests {
		if got := tt.cfg.Summary(); got != tt.want {
			t.Errorf("Summary() =\n%s\nwant\n%s", got, tt.want)
		}
	}
}
