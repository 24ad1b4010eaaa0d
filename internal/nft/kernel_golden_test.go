package nft

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKernelGolden proves the netlink encoding means what the golden text
// says: after a sync, `nft list table` prints the golden file, nft accepts
// the golden file as input, and reading the table back finds nothing to do.
func TestKernelGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns, c := netns(t)
			rs := Build(&tc.cfg, tc.opts)
			golden, err := os.ReadFile(filepath.Join("testdata", tc.name+".nft"))
			if err != nil {
				t.Fatal(err)
			}
			nftIn(t, ns, string(golden), "-c", "-f", "-")

			if res := mustSync(t, c, rs); res.Op != OpCreate {
				t.Errorf("first sync: op %s, want create", res.Op)
			}
			got := nftIn(t, ns, "", "list", "table", "inet", rs.Table)
			if diff := cmp.Diff(string(golden), canonical(got)); diff != "" {
				t.Errorf("kernel table differs from golden (-golden +kernel):\n%s", diff)
			}

			c.Forget()
			if res := mustSync(t, c, rs); res.Op != OpNone || res.Cached {
				t.Errorf("sync after read-back: %+v, want op none from a dump", res)
			}
		})
	}
}

// TestAdoptNftTable starts from the table `nft -f` writes for the golden
// text (different bytes for the same meaning, and a sentinel element) and
// checks that a sync converges on masqd's own encoding without a replace.
func TestAdoptNftTable(t *testing.T) {
	ns, c := netns(t)
	rs := Build(&goldenCases[0].cfg, goldenCases[0].opts)
	nftIn(t, ns, rs.String(), "-f", "-")
	res := mustSync(t, c, rs)
	if res.Op != OpUpdate {
		t.Errorf("op %s, want update in place", res.Op)
	}
	if diff := cmp.Diff(rs.String(), canonical(nftIn(t, ns, "", "list", "table", "inet", "masqd"))); diff != "" {
		t.Errorf("kernel table differs (-want +got):\n%s", diff)
	}
	c.Forget()
	if res := mustSync(t, c, rs); res.Op != OpNone {
		t.Errorf("second sync: op %s, want none", res.Op)
	}
}
