package nft

import (
	"testing"

	"github.com/google/nftables"
)

// TestDescribeMasqdRules: every rule of every golden case, encoded as Sync
// sends it, reads back as Rule.String prints it.
func TestDescribeMasqdRules(t *testing.T) {
	for _, tc := range goldenCases {
		rs := Build(&tc.cfg, tc.opts)
		for _, r := range rs.Rules {
			got := describeRule(&nftables.Rule{Exprs: ruleExprs(r, nil), UserData: userData(r.Comment)})
			if want := r.String(); got != want {
				t.Errorf("%s: rule %s:\ngot  %s\nwant %s", tc.name, r.Name, got, want)
			}
		}
	}
}
