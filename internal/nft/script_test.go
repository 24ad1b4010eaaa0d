package nft

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScriptGolden pins the script's preamble: the rest is String, pinned by
// TestGolden.
func TestScriptGolden(t *testing.T) {
	rs := Build(&goldenCases[0].cfg, goldenCases[0].opts)
	path := filepath.Join("testdata", "script", "default.nft")
	got := rs.Script()
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
		t.Errorf("Script mismatch (-want +got), rerun with -update if intended:\n%s", diff)
	}
}

// TestKernelScript loads the script of every golden case with nft, twice,
// then over a table that masqd synced, and checks each time that the table
// lists as the golden text, that the sets kept their handles (nothing was
// re-created), and that a sync then adopts the table in place. (nft encodes
// some expressions differently from masqd, so the sync may rewrite rules
// and refill sets that mean the same.)
func TestKernelScript(t *testing.T) {
	for _, tc := range goldenCases {
		// Not parallel: google/nftables v0.3.0 allocates set IDs from an
		// unlocked global, and parallel syncs race on it.
		t.Run(tc.name, func(t *testing.T) {
			ns, c := netns(t)
			rs := Build(&tc.cfg, tc.opts)
			golden, err := os.ReadFile(filepath.Join("testdata", tc.name+".nft"))
			if err != nil {
				t.Fatal(err)
			}
			load := func(step string) {
				t.Helper()
				nftIn(t, ns, rs.Script(), "-f", "-")
				got := nftIn(t, ns, "", "list", "table", "inet", rs.Table)
				if diff := cmp.Diff(string(golden), canonical(got)); diff != "" {
					t.Fatalf("%s: kernel table differs from golden (-golden +kernel):\n%s", step, diff)
				}
			}
			load("first load")
			handles := nftIn(t, ns, "", "-a", "list", "sets", "inet")
			load("second load")
			if again := nftIn(t, ns, "", "-a", "list", "sets", "inet"); again != handles {
				t.Errorf("the second load re-created a set: before\n%s\nafter\n%s", handles, again)
			}

			nftIn(t, ns, "", "delete", "table", "inet", rs.Table)
			c.Forget()
			mustSync(t, c, rs)
			load("load over a table masqd synced")
			c.Forget()
			if res := mustSync(t, c, rs); res.Op == OpReplace || res.Op == OpCreate {
				t.Errorf("sync after a load: %+v, want the table adopted in place", res)
			}
		})
	}
}
