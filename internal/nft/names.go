package nft

import (
	"fmt"
	"slices"
)

// MaxNameLen is the longest table or chain name the kernel takes:
// NFT_NAME_MAXLEN (256) counts the terminating NUL.
const MaxNameLen = 255

// nftKeywords are the words nft 1.0.6 reads as keywords where a table or
// chain name goes, so that `table inet counter` is a syntax error. Found
// by loading `table inet WORD` for every token in libnftables' grammar;
// TestKernelNftKeywords checks the list against the installed nft.
var nftKeywords = []string{
	"accept", "add", "ah", "all", "arp", "auto-merge", "bridge", "cgroup", "chain", "comment",
	"comp", "constant", "continue", "counter", "cpu", "create", "ct", "day", "dccp", "define",
	"delete", "describe", "device", "devices", "dnat", "drop", "dst", "dup", "dynamic", "ecn",
	"element", "elements", "esp", "ether", "exists", "expires", "export", "exthdr", "fib",
	"flags", "flow", "flowtable", "flush", "frag", "fwd", "gc-interval", "get", "goto",
	"handle", "hbh", "hook", "hour", "ibriport", "ibrname", "icmp", "icmpv6", "igmp", "iif",
	"iifgroup", "iifname", "iiftype", "import", "include", "index", "inet", "insert",
	"interval", "ip", "ip6", "ipsec", "jhash", "jump", "limit", "list", "log", "map", "mark",
	"masquerade", "meta", "meter", "mh", "missing", "monitor", "netdev", "nftrace", "notrack",
	"numgen", "obriport", "obrname", "offload", "oif", "oifgroup", "oifname", "oiftype",
	"osf", "pkttype", "policy", "position", "priority", "queue", "quota", "random",
	"redefine", "redirect", "reject", "rename", "replace", "reset", "return", "rt", "rt0",
	"rt2", "rtclassid", "rule", "ruleset", "sctp", "secmark", "set", "size", "skgid", "skuid",
	"snat", "socket", "srh", "symhash", "synproxy", "table", "tcp", "th", "time", "timeout",
	"tproxy", "type", "typeof", "udp", "udplite", "undefine", "update", "vlan", "vmap", "xt",
}

// ValidateName checks a table or chain name (kind says which flag named
// it) against what nft parses as an identifier and the kernel stores: a
// letter, '_' or '.' first, then letters, digits and '/', '-', '_', '.';
// at most MaxNameLen bytes; not one of nft's keywords. The kernel would
// take more, but then `masqd render` would print a script nft rejects.
func ValidateName(kind, name string) error {
	const fix = "use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT"
	switch {
	case name == "":
		return fmt.Errorf("%s is empty (fix: %s)", kind, fix)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%s is %d bytes long; nftables takes at most %d (fix: a shorter name)", kind, len(name), MaxNameLen)
	case slices.Contains(nftKeywords, name):
		return fmt.Errorf("%s %q is an nft keyword, so nft could not read the ruleset (fix: another name, e.g. %s-masq)", kind, name, name)
	}
	for i, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '.'
		if letter || i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '/') {
			continue
		}
		return fmt.Errorf("%s %q: nftables names cannot have %q at byte %d (fix: %s)", kind, name, r, i+1, fix)
	}
	return nil
}
