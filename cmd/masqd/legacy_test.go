package main

import (
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
)

// TestCleanupLegacyNone: with nothing to remove, cleanup --legacy says where
// else to look and gives a command that can be pasted as it is.
func TestCleanupLegacyNone(t *testing.T) {
	ns := netns(t)
	for _, tc := range []struct {
		flags []string
		chain string
	}{{nil, "IP-MASQ-AGENT"}, {[]string{"--masq-chain=MY-MASQ"}, "MY-MASQ"}} {
		code, out, errs := runArgs(t, append([]string{"cleanup", "--legacy", "--netns=" + netnstest.Path(ns)}, tc.flags...)...)
		want := "no ip-masq-agent chains in iptables-nft's nat tables.\n" +
			"Rules written by iptables-legacy are invisible to nftables; check with: iptables-legacy -t nat -S | grep -i masq\n" +
			"and remove them with: iptables-legacy -t nat -S POSTROUTING | grep -e ' -j " + tc.chain + "$' | sed 's/^-A /-D /' | " +
			"xargs -r -L1 iptables-legacy -t nat && iptables-legacy -t nat -F " + tc.chain + " && iptables-legacy -t nat -X " + tc.chain + "\n"
		if code != 0 || errs != "" || out != want {
			t.Errorf("%q: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", tc.flags, code, errs, out, want)
		}
	}
}
