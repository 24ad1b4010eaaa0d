package nft

import (
	"net/netip"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

func TestSmoke(t *testing.T) {
	ns, c := netns(t)
	rs := Build(&config.Config{NonMasqueradeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16")}}, DefaultOptions())
	res := mustSync(t, c, rs)
	t.Logf("%+v", res)
	got := nftIn(t, ns, "", "list", "table", "inet", "masqd")
	t.Logf("\n%s", got)
	if canonical(got) != rs.String() {
		t.Errorf("mismatch\n%s\n---\n%s", canonical(got), rs.String())
	}
	res = mustSync(t, c, rs)
	t.Logf("%+v", res)
	c.Forget()
	res = mustSync(t, c, rs)
	t.Logf("%+v", res)
}
