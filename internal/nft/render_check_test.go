package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// randomConfig returns a valid config: up to 40 masked prefixes of every
// length, IPv6 ones only when ipv6 is set, sometimes none at all.
func randomConfig(r *rand.Rand, ipv6 bool) *config.Config {
	cfg := &config.Config{
		NonMasqueradeCIDRs: []netip.Prefix{},
		MasqLinkLocal:      r.IntN(2) == 0,
		MasqLinkLocalIPv6:  r.IntN(2) == 0,
		ResyncInterval:     config.DefaultResyncInterval,
	}
	for range r.IntN(41) {
		var a netip.Addr
		if ipv6 && r.IntN(3) == 0 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			a = netip.AddrFrom16(b)
		} else {
			a = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		cfg.NonMasqueradeCIDRs = append(cfg.NonMasqueradeCIDRs, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked())
	}
	return cfg
}

// TestRenderAcceptedByNft checks a sample of rendered rulesets with the
// kernel: `nft -c -f -` inside a throw-away namespace accepts every one.
// The golden tests pin the text of a few; this covers random lists, whose
// merged intervals nft must take as written, under every option.
func TestRenderAcceptedByNft(t *testing.T) {
	ns, _ := netns(t)
	r := rand.New(rand.NewPCG(20261125, 1))
	for i := range 50 {
		opts := ipMasqAgentDefaults()
		opts.EnableIPv6 = i%2 == 0
		opts.RandomFully = i%4 < 2
		if i%7 == 0 {
			opts.Table, opts.Chain = fmt.Sprintf("masqd-check-%d", i), "IP-MASQ-AGENT"
		}
		cfg := randomConfig(r, opts.EnableIPv6)
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			text := Build(cfg, opts).String()
			cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
			cmd.Stdin = strings.NewReader(text)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("nft -c -f: %v\n%s\nfor the ruleset of %+v, %+v:\n%s", err, out, cfg, opts, text)
			}
		})
	}
}
