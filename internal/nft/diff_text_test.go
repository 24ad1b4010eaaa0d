package nft

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/config"
)

// TestDiffText pins diff's text for what the kernel tests cannot easily
// produce: rules nft encoded, refills, optional and foreign sets,
// exceptions with the link-local exemption, and a replace.
func TestDiffText(t *testing.T) {
	p := writeTestConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\nmasqueradeCIDRs: [10.20.0.0/16]\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n")
	cfg, err := config.Load(p, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Table: DefaultTable, Chain: DefaultChain, RandomFully: true}
	rs := Build(cfg, opts)
	iv := func(s string) Interval { return IntervalOf(netip.MustParsePrefix(s)) }
	for _, tc := range []struct {
		name string
		d    Diff
		want string
	}{
		{"update", Diff{Op: OpUpdate,
			Rules: []RuleChange{
				{Position: 2, Handle: 5, Text: "ip daddr 169.254.0.0/16 counter return"},
				{Add: true, Position: 2, Text: "ip daddr 169.254.0.0/16 counter return"},
				{Add: true, Position: 3, Text: rs.Rules[2].String()},
			},
			Sets: []SetDiff{
				{Name: SetV4, Refill: true, Added: []Interval{rs.Set(SetV4).Intervals[0], iv("169.254.0.0/16")}},
				{Name: SetSrcV4, Created: true, Added: []Interval{iv("10.244.0.0/16")}},
				{Name: "by-hand", Deleted: true},
			}},
			"table inet masqd: a sync would change it in place:\n" +
				"chain postrouting:\n" +
				"~\trule 2, handle 5: ip daddr 169.254.0.0/16 counter return (encoded differently, as nft -f writes it; a sync rewrites it)\n" +
				"+\trule 3: " + rs.Rules[2].String() + "\n" +
				"set nomasq-v4: its elements are not in masqd's encoding (as nft -f writes them); a sync would refill it\n" +
				"+\t10.0.0.0-10.19.255.255: from nonMasqueradeCIDRs 10.0.0.0/8 (" + p + ":1)\n" +
				"+\t169.254.0.0/16: from the link-local exemption 169.254.0.0/16 (masqLinkLocal: false)\n" +
				"set masq-src-v4: missing; a sync would create it\n" +
				"+\t10.244.0.0/16: from masqueradeSourceCIDRs 10.244.0.0/16 (" + p + ":3)\n" +
				"set by-hand: not one of masqd's; a sync would delete it\n"},
		{"replace", Diff{Op: OpReplace, Reason: "table has 2 chains, want 1"},
			"table inet masqd: a sync would replace it whole: table has 2 chains, want 1\n"},
	} {
		var b strings.Builder
		tc.d.WriteText(&b, rs, cfg, opts)
		if b.String() != tc.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.name, b.String(), tc.want)
		}
	}
}

// writeTestConfig writes body to a config file and returns its path.
func writeTestConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ip-masq-agent")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
