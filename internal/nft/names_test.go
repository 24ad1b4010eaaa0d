package nft

import (
	"strings"
	"testing"

	"github.com/masqd/masqd/internal/netnstest"
)

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	for _, ok := range []string{"masqd", "postrouting", "IP-MASQ-AGENT", "nat", "filter", "_x", ".x", "a/b", "x.y-z_1", long} {
		if err := ValidateName("--table", ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, tc := range []struct{ name, want string }{
		{"", `--masq-chain is empty (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)`},
		{"bad chain", `--masq-chain "bad chain": nftables names cannot have ' ' at byte 4 (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)`},
		{"1abc", `--masq-chain "1abc": nftables names cannot have '1' at byte 1 (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)`},
		{"-x", `--masq-chain "-x": nftables names cannot have '-' at byte 1 (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)`},
		{"mäsq", `--masq-chain "mäsq": nftables names cannot have 'ä' at byte 2 (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)`},
		{long + "a", `--masq-chain is 256 bytes long; nftables takes at most 255 (fix: a shorter name)`},
		{"masquerade", `--masq-chain "masquerade" is an nft keyword, so nft could not read the ruleset (fix: another name, e.g. masquerade-masq)`},
	} {
		err := ValidateName("--masq-chain", tc.name)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ValidateName(%q) = %v\nwant %s", tc.name, err, tc.want)
		}
	}
}

// TestKernelNftKeywords checks the keyword list and the character rules
// against the installed nft: it rejects every listed keyword as a table
// name, and takes the script of a ruleset whose table and chain carry
// each name ValidateName accepts.
func TestKernelNftKeywords(t *testing.T) {
	ns, _ := netns(t)
	for _, kw := range nftKeywords {
		if out, err := netnstest.Nft(ns, "table inet "+kw+"\n", "-c", "-f", "-"); err == nil {
			t.Errorf("nft accepts the keyword %q as a table name: drop it from nftKeywords (%s)", kw, out)
		}
	}
	for _, name := range []string{"nat", "filter", "_x", ".x", "a/b", "x.y-z_1", "IP-MASQ-AGENT", strings.Repeat("a", MaxNameLen)} {
		if err := ValidateName("name", name); err != nil {
			t.Fatal(err)
		}
		opts := ipMasqAgentDefaults()
		opts.Table, opts.Chain = name, name
		rs := Build(&goldenCases[0].cfg, opts)
		if out, err := netnstest.Nft(ns, rs.Script(), "-c", "-f", "-"); err != nil {
			t.Errorf("nft rejects table and chain %q: %v\n%s", name, err, out)
		}
	}
}
