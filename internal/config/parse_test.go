package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	rfc1918 = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
	v6      = Options{EnableIPv6: true}
)

// cmpConfig compares configs field by field; netip values compare by ==.
var cmpConfig = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		want Config
	}{
		{"empty", "", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"whitespace", " \n\t\n  \r\n", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"comments only", "# nothing here\n  # still nothing\n", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"document marker only", "---\n", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"null document", "null\n", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"BOM only", "\ufeff", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"empty JSON object", "{}", Options{}, Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"reserved ranges default", "", Options{NoMasqAllReservedRanges: true},
			Config{NonMasqueradeCIDRs: reservedCIDRs, ResyncInterval: time.Minute}},
		{"list replaces defaults", "nonMasqueradeCIDRs:\n  - 198.51.100.0/24\n", Options{NoMasqAllReservedRanges: true},
			Config{NonMasqueradeCIDRs: prefixes("198.51.100.0/24"), ResyncInterval: time.Minute}},
		{"empty list masquerades everything", "nonMasqueradeCIDRs: []\n", Options{},
			Config{NonMasqueradeCIDRs: []netip.Prefix{}, ResyncInterval: time.Minute}},
		{"empty JSON list", `{"nonMasqueradeCIDRs": []}`, Options{},
			Config{NonMasqueradeCIDRs: []netip.Prefix{}, ResyncInterval: time.Minute}},
		{"every key, YAML", "nonMasqueradeCIDRs:\n- 192.0.2.0/24\n- 2001:db8::/32\nmasqLinkLocal: true\nmasqLinkLocalIPv6: true\nresyncInterval: 500ms\ncidrLimit: 2\n", v6,
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24", "2001:db8::/32"), MasqLinkLocal: true, MasqLinkLocalIPv6: true,
				ResyncInterval: 500 * time.Millisecond, CIDRLimit: 2}},
		{"every key, JSON", `{"nonMasqueradeCIDRs": ["192.0.2.0/24", "2001:db8::/32"], "masqLinkLocal": true, "masqLinkLocalIPv6": true, "resyncInterval": "1m30s", "cidrLimit": 2}`, v6,
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24", "2001:db8::/32"), MasqLinkLocal: true, MasqLinkLocalIPv6: true,
				ResyncInterval: 90 * time.Second, CIDRLimit: 2}},
		{"JSON escapes", `{"nonMasqueradeCIDRs": ["192.0.2.0\/24", "\u0031\u0039\u0038.51.100.0/24"]}`, Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24", "198.51.100.0/24"), ResyncInterval: time.Minute}},
		{"duplicates and overlaps kept", "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 10.0.0.0/8]\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8"), ResyncInterval: time.Minute}},
		{"false booleans", "masqLinkLocal: false\nmasqLinkLocalIPv6: False\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute}},
		{"cidrLimit 0 means none", "cidrLimit: 0\nnonMasqueradeCIDRs: [10.0.0.0/8, 11.0.0.0/8]\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("10.0.0.0/8", "11.0.0.0/8"), ResyncInterval: time.Minute}},
		{"cidrLimit exactly reached", "cidrLimit: 3\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute, CIDRLimit: 3}},
		{"YAML hex int", "cidrLimit: 0x40\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, ResyncInterval: time.Minute, CIDRLimit: 64}},
		{"BOM", "\ufeffmasqLinkLocal: true\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"BOM JSON", "\ufeff{\"masqLinkLocal\": true}", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"CRLF", "nonMasqueradeCIDRs:\r\n  - 192.0.2.0/24\r\nmasqLinkLocal: true\r\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"CRLF JSON", "{\r\n\"nonMasqueradeCIDRs\": [\r\n\"192.0.2.0/24\"\r\n]\r\n}\r\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), ResyncInterval: time.Minute}},
		{"tab after the colon", "masqLinkLocal:\ttrue\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"flow mapping is YAML, not JSON", "{nonMasqueradeCIDRs: [192.0.2.0/24], masqLinkLocal: true}", Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"aliases", "nonMasqueradeCIDRs: [&net 192.0.2.0/24, *net]\nmasqLinkLocal: &yes true\nmasqLinkLocalIPv6: *yes\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24", "192.0.2.0/24"), MasqLinkLocal: true, MasqLinkLocalIPv6: true, ResyncInterval: time.Minute}},
		{"trailing empty document", "masqLinkLocal: true\n---\n", Options{},
			Config{NonMasqueradeCIDRs: rfc1918, MasqLinkLocal: true, ResyncInterval: time.Minute}},
		{"IPv6 prefix kept as written", "nonMasqueradeCIDRs: ['FD00::/8', '::/0']\n", v6,
			Config{NonMasqueradeCIDRs: prefixes("fd00::/8", "::/0"), ResyncInterval: time.Minute}},
		{"JSON trailing commas, read as YAML as ip-masq-agent did", "{\"nonMasqueradeCIDRs\": [\n  \"192.0.2.0/24\",\n],\n\"cidrLimit\": 4,\n}\n", Options{},
			Config{NonMasqueradeCIDRs: prefixes("192.0.2.0/24"), ResyncInterval: time.Minute, CIDRLimit: 4}},
		{"zero-length prefixes", `{"nonMasqueradeCIDRs": ["0.0.0.0/0"]}`, Options{},
			Config{NonMasqueradeCIDRs: prefixes("0.0.0.0/0"), ResyncInterval: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("config", []byte(tt.in), tt.opts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Files = []string{"config"}
			if diff := cmp.Diff(&tt.want, got, cmpConfig); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// want is an expected problem; msg and fix are substrings.
type want struct {
	line, col int
	field     string
	msg, fix  string
}

func checkProblems(t *testing.T, err error, file string, wants []want) {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if len(cerr.Problems) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(cerr.Problems), len(wants), err)
	}
	for i, w := range wants {
		p := cerr.Problems[i]
		if p.File != file || p.Line != w.line || p.Column != w.col || p.Field != w.field ||
			!strings.Contains(p.Message, w.msg) || !strings.Contains(p.Fix, w.fix) {
			t.Errorf("problem %d = %+v\nwant file %q line %d col %d field %q message ~%q fix ~%q",
				i, p, file, w.line, w.col, w.field, w.msg, w.fix)
		}
	}
}

// problemCases are configs that Parse rejects, with every problem it must report.
var problemCases = []struct {
	name  string
	in    string
	opts  Options
	wants []want
}{
	// Syntax.
	{"YAML syntax", "nonMasqueradeCIDRs: [10.0.0.0/8\nmasqLinkLocal: true\n", Options{},
		[]want{{line: 1, msg: "invalid YAML: did not find expected ',' or ']'", fix: "correct the YAML syntax"}}},
	{"YAML colon in value", "resyncInterval: a: b\n", Options{},
		[]want{{msg: "mapping values are not allowed", fix: `quote a value that contains ": "`}}},
	{"YAML tab indentation", "nonMasqueradeCIDRs:\n\t- 10.0.0.0/8\n", Options{},
		[]want{{line: 2, col: 1, msg: "a tab in the indentation", fix: "indent with spaces"}}},
	{"YAML tab after spaces", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  \t- 11.0.0.0/8\n", Options{},
		[]want{{line: 3, col: 3, msg: "a tab in the indentation", fix: "indent with spaces"}}},
	{"YAML unknown alias", "nonMasqueradeCIDRs: *nets\n", Options{},
		[]want{{msg: "unknown anchor 'nets'"}}},
	{"YAML two documents", "masqLinkLocal: true\n---\nmasqLinkLocal: false\n", Options{},
		[]want{{line: 3, col: 1, msg: "a second YAML document", fix: `remove the "---"`}}},
	{"YAML list at the top", "- 10.0.0.0/8\n", Options{},
		[]want{{line: 1, col: 1, msg: "must be a mapping of keys to values, not a list", fix: "nonMasqueradeCIDRs:"}}},
	{"YAML scalar at the top", "10.0.0.0/8\n", Options{},
		[]want{{line: 1, col: 1, msg: "must be a mapping of keys to values, not a string"}}},
	{"YAML merge key", "<<: {masqLinkLocal: true}\n", Options{},
		[]want{{line: 1, col: 1, msg: "merge keys (<<) are not supported", fix: "write the keys out"}}},
	{"YAML non-string key", "[a]: 1\n", Options{},
		[]want{{line: 1, col: 1, msg: "a key must be a string"}}},
	{"JSON syntax", "{\n  \"masqLinkLocal\": true\n  \"cidrLimit\": 4\n}", Options{},
		[]want{{line: 3, col: 3, msg: "invalid JSON: invalid character '\"' after object key:value pair", fix: "correct the JSON syntax"}}},
	{"JSON double comma", "{\n  \"cidrLimit\": 4,,\n}\n", Options{},
		[]want{{line: 2, col: 18, msg: "invalid JSON: invalid character ','", fix: "correct the JSON syntax"}}},
	{"JSON cut short", "{\"nonMasqueradeCIDRs\": [\"10.0.0.0/8\",\n", Options{},
		[]want{{line: 2, col: 1, msg: "unexpected end of file", fix: "close every { and ["}}},
	{"JSON cut short after a key", "{\"masqLinkLocal\": true,\n\"cidrLimit\"", Options{},
		[]want{{line: 2, col: 12, msg: "unexpected end of file", fix: "close every { and ["}}},
	{"JSON syntax in a list", "{\"nonMasqueradeCIDRs\": [\n  \"10.0.0.0/8\"\n  \"11.0.0.0/8\"]}", Options{},
		[]want{{line: 3, col: 3, msg: "invalid JSON: invalid character '\"' after array element"}}},
	{"JSON control character in a string", "{\"masqLinkLocal\": true,\n \"resyncInterval\": \"6\x010s\"}", Options{},
		[]want{{line: 2, col: 22, msg: "invalid JSON: invalid character '\\x01' in string literal"}}},
	{"JSON trailing data", "{\"masqLinkLocal\": true}\n{\"cidrLimit\": 4}\n", Options{},
		[]want{{line: 2, col: 1, msg: "invalid JSON: invalid character '{' after top-level value"}}},
	{"JSON keeps problems before a syntax error", "{\"masqLinkLocal\": 1,\n\"x\" 1}", Options{},
		[]want{
			{line: 2, col: 5, msg: "invalid JSON"},
			{line: 1, col: 19, field: "masqLinkLocal", msg: "must be true or false, not a number"},
		}},

	// Keys: a duplicate is validated only where ip-masq-agent applied it.
	{"duplicate key, the applied one invalid", "cidrLimit: -1\ncidrLimit: x\n", Options{},
		[]want{{line: 2, col: 12, field: "cidrLimit", msg: `must be a number, not the string "x"`}}},

	// Types.
	{"bool as string", "masqLinkLocal: \"yes\"\n", Options{},
		[]want{{line: 1, col: 16, field: "masqLinkLocal", msg: `must be true or false, not the string "yes"`, fix: "write true"}}},
	{"quoted YAML 1.1 word", "masqLinkLocalIPv6: 'off'\n", Options{},
		[]want{{line: 1, col: 20, field: "masqLinkLocalIPv6", msg: `not the string "off"`, fix: "write false"}}},
	{"YAML 1.1 word in another case", "masqLinkLocal: yEs\n", Options{},
		[]want{{line: 1, col: 16, field: "masqLinkLocal", msg: `not the string "yEs"`, fix: "write true"}}},
	{"YAML 1.1 word with a tag", "masqLinkLocal: !!str on\n", Options{},
		[]want{{line: 1, col: 16, field: "masqLinkLocal", msg: `not the string "on"`, fix: "write true"}}},
	{"bool quoted", `{"masqLinkLocal": "true"}`, Options{},
		[]want{{line: 1, col: 19, field: "masqLinkLocal", msg: `not the string "true"`, fix: "write true without quotes"}}},
	{"bool as number", `{"masqLinkLocal": 1}`, Options{},
		[]want{{line: 1, col: 19, field: "masqLinkLocal", msg: "must be true or false, not a number", fix: "write true or false"}}},
	{"cidrLimit as string", "cidrLimit: \"64\"\n", Options{},
		[]want{{line: 1, col: 12, field: "cidrLimit", msg: `must be a number, not the string "64"`, fix: "write 64 without quotes"}}},
	{"cidrLimit as JSON string", `{"cidrLimit": "64"}`, Options{},
		[]want{{line: 1, col: 15, field: "cidrLimit", msg: `not the string "64"`, fix: "write 64 without quotes"}}},
	{"cidrLimit fraction", "cidrLimit: 6.5\n", Options{},
		[]want{{line: 1, col: 12, field: "cidrLimit", msg: "6.5 is not a whole number", fix: "write a whole number"}}},
	{"cidrLimit whole float", `{"cidrLimit": 64.0}`, Options{},
		[]want{{line: 1, col: 15, field: "cidrLimit", msg: "64.0 is not a whole number", fix: "write 64"}}},
	{"cidrLimit negative", "cidrLimit: -1\n", Options{},
		[]want{{line: 1, col: 12, field: "cidrLimit", msg: "-1 is negative", fix: "use 0 for no limit"}}},
	{"cidrLimit huge", `{"cidrLimit": 99999999999999999999}`, Options{},
		[]want{{line: 1, col: 15, field: "cidrLimit", msg: "is out of range"}}},
	{"cidrLimit list", "cidrLimit: [1]\n", Options{},
		[]want{{line: 1, col: 12, field: "cidrLimit", msg: "must be a number, not a list"}}},
	{"CIDRs as scalar", "nonMasqueradeCIDRs: 10.0.0.0/8\n", Options{},
		[]want{{line: 1, col: 21, field: "nonMasqueradeCIDRs", msg: "must be a list of CIDRs, not a string", fix: `write it as a list: ["10.0.0.0/8"]`}}},
	{"CIDRs as comma-separated string", `{"nonMasqueradeCIDRs": "10.0.0.0/8, 192.168.0.0/16"}`, Options{},
		[]want{{line: 1, col: 24, field: "nonMasqueradeCIDRs", msg: "not a string", fix: `["10.0.0.0/8", "192.168.0.0/16"]`}}},
	{"CIDRs as mapping", "nonMasqueradeCIDRs:\n  a: 10.0.0.0/8\n", Options{},
		[]want{{line: 2, col: 3, field: "nonMasqueradeCIDRs", msg: "must be a list of CIDRs, not a mapping"}}},
	{"CIDR entry not a string", "nonMasqueradeCIDRs:\n  - 10\n  - [10.0.0.0/8]\n  - {a: b}\n  -\n", Options{},
		[]want{
			{line: 2, col: 5, field: "nonMasqueradeCIDRs[0]", msg: "must be a CIDR string, not a number"},
			{line: 3, col: 5, field: "nonMasqueradeCIDRs[1]", msg: "must be a CIDR string, not a list"},
			{line: 4, col: 5, field: "nonMasqueradeCIDRs[2]", msg: "must be a CIDR string, not a mapping"},
			{line: 5, col: 4, field: "nonMasqueradeCIDRs[3]", msg: "must be a CIDR string, not null"},
		}},
	{"JSON CIDR entry not a string", `{"nonMasqueradeCIDRs": [1, true, null, {"a": ["b"]}, [], "10.0.0.0/8"]}`, Options{},
		[]want{
			{line: 1, col: 25, field: "nonMasqueradeCIDRs[0]", msg: "not a number"},
			{line: 1, col: 28, field: "nonMasqueradeCIDRs[1]", msg: "not a boolean"},
			{line: 1, col: 34, field: "nonMasqueradeCIDRs[2]", msg: "not null"},
			{line: 1, col: 40, field: "nonMasqueradeCIDRs[3]", msg: "not a mapping"},
			{line: 1, col: 54, field: "nonMasqueradeCIDRs[4]", msg: "not a list"},
		}},
	{"resyncInterval number", "resyncInterval: 60\n", Options{},
		[]want{{line: 1, col: 17, field: "resyncInterval", msg: "must be a duration with a unit, not a number", fix: `write "60s"`}}},
	{"resyncInterval JSON number", `{"resyncInterval": 60}`, Options{},
		[]want{{line: 1, col: 20, field: "resyncInterval", msg: "not a number", fix: `write "60s"`}}},
	{"resyncInterval quoted number", `{"resyncInterval": "60"}`, Options{},
		[]want{{line: 1, col: 20, field: "resyncInterval", msg: `"60" is not a duration`, fix: `write "60s"`}}},
	{"resyncInterval garbage", "resyncInterval: soon\n", Options{},
		[]want{{line: 1, col: 17, field: "resyncInterval", msg: `"soon" is not a duration`, fix: `such as "60s" or "500ms"`}}},
	{"resyncInterval zero", "resyncInterval: 0s\n", Options{},
		[]want{{line: 1, col: 17, field: "resyncInterval", msg: `"0s" is not positive`}}},
	{"resyncInterval negative", "resyncInterval: -5s\n", Options{},
		[]want{{line: 1, col: 17, field: "resyncInterval", msg: "is not positive"}}},
	{"resyncInterval too short", "resyncInterval: 10ms\n", Options{},
		[]want{{line: 1, col: 17, field: "resyncInterval", msg: `"10ms" is below the minimum of 100ms`, fix: "use 100ms or more"}}},
	{"no value", "nonMasqueradeCIDRs:\nmasqLinkLocal:\nresyncInterval: null\ncidrLimit: ~\n", Options{},
		[]want{{line: 3, col: 17, field: "resyncInterval", msg: "has no value", fix: `write a duration such as "60s", or remove the key`}}},
	{"JSON null", `{"resyncInterval": null}`, Options{},
		[]want{{line: 1, col: 20, field: "resyncInterval", msg: "has no value"}}},

	// CIDRs.
	{"host bits", "nonMasqueradeCIDRs:\n  - 10.0.0.1/8\n", Options{},
		[]want{{line: 2, col: 5, field: "nonMasqueradeCIDRs[0]", msg: "10.0.0.1/8 has host bits set", fix: "did you mean 10.0.0.0/8?"}}},
	{"host bits IPv6", "nonMasqueradeCIDRs: [\"2001:db8::1/32\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "has host bits set", fix: "did you mean 2001:db8::/32?"}}},
	{"bare IPv4 address", "nonMasqueradeCIDRs: [192.0.2.7]\n", Options{},
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "192.0.2.7 is an address, not a CIDR", fix: "write 192.0.2.7/32"}}},
	{"bare IPv6 address", `{"nonMasqueradeCIDRs": ["2001:db8::7"]}`, v6,
		[]want{{line: 1, col: 25, field: "nonMasqueradeCIDRs[0]", msg: "is an address, not a CIDR", fix: "write 2001:db8::7/128"}}},
	{"unparseable", "nonMasqueradeCIDRs: [10.0.0.0/33, 10.0.0/8, 300.0.0.0/8, banana, \"\"]\n", Options{},
		[]want{
			{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: `"10.0.0.0/33" is not a CIDR: prefix length out of range`, fix: "ADDRESS/LENGTH"},
			{line: 1, col: 35, field: "nonMasqueradeCIDRs[1]", msg: `"10.0.0/8" is not a CIDR`},
			{line: 1, col: 45, field: "nonMasqueradeCIDRs[2]", msg: `"300.0.0.0/8" is not a CIDR`},
			{line: 1, col: 58, field: "nonMasqueradeCIDRs[3]", msg: `"banana" is not a CIDR`},
			{line: 1, col: 66, field: "nonMasqueradeCIDRs[4]", msg: "empty CIDR", fix: "remove the entry"},
		}},
	{"spaces around", `{"nonMasqueradeCIDRs": [" 10.0.0.0/8"]}`, Options{},
		[]want{{line: 1, col: 25, field: "nonMasqueradeCIDRs[0]", msg: "has spaces around it", fix: `write "10.0.0.0/8"`}}},
	{"IPv4-mapped", "nonMasqueradeCIDRs: [\"::ffff:10.0.0.0/104\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "is an IPv4-mapped IPv6 prefix", fix: "write 10.0.0.0/8"}}},
	{"IPv4-mapped with host bits", "nonMasqueradeCIDRs: [\"::ffff:10.0.0.1/104\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "IPv4-mapped", fix: "write 10.0.0.0/8"}}},
	{"IPv4-mapped address", "nonMasqueradeCIDRs: [\"::ffff:192.0.2.7\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "is an address", fix: "write 192.0.2.7/32"}}},
	{"IPv6 without --enable-ipv6", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - fd00::/8\n", Options{},
		[]want{{line: 3, col: 5, field: "nonMasqueradeCIDRs[1]", msg: "fd00::/8 is an IPv6 CIDR but IPv6 is not enabled", fix: "start masqd with --enable-ipv6, or remove it"}}},
	{"zone", "nonMasqueradeCIDRs: [\"fe80::1%eth0/64\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "has a zone", fix: "write fe80::/64"}}},
	{"zone without length", "nonMasqueradeCIDRs: [\"fe80::1%eth0\"]\n", v6,
		[]want{{line: 1, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "has a zone", fix: "write fe80::1"}}},
	{"over cidrLimit", "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 11.0.0.0/8\n  - 12.0.0.0/8\ncidrLimit: 2\n", Options{},
		[]want{{line: 1, col: 1, field: "nonMasqueradeCIDRs", msg: "3 entries, over the cidrLimit of 2", fix: "raise cidrLimit or remove entries"}}},
	{"defaults over cidrLimit", `{"cidrLimit": 2}`, Options{},
		[]want{{line: 1, col: 15, field: "cidrLimit", msg: "the default nonMasqueradeCIDRs have 3 entries, over this limit of 2", fix: "raise cidrLimit"}}},
	{"over cidrLimit counts bad entries", "nonMasqueradeCIDRs: [10.0.0.0/8, x]\ncidrLimit: 1\n", Options{},
		[]want{
			{line: 1, col: 34, field: "nonMasqueradeCIDRs[1]", msg: `"x" is not a CIDR`},
			{line: 1, col: 1, field: "nonMasqueradeCIDRs", msg: "2 entries, over the cidrLimit of 1"},
		}},

	// All problems of a file at once.
	{"many problems", "masqLinkLocal: \"yes\"\ncidrLimit: \"64\"\nresyncInterval: 60\nnonMasqueradeCIDRs: [10.0.0.1/8, fd00::/8]\n", Options{},
		[]want{
			{line: 1, col: 16, field: "masqLinkLocal", msg: "not the string"},
			{line: 2, col: 12, field: "cidrLimit", msg: "not the string"},
			{line: 3, col: 17, field: "resyncInterval", msg: "not a number"},
			{line: 4, col: 22, field: "nonMasqueradeCIDRs[0]", msg: "host bits"},
			{line: 4, col: 34, field: "nonMasqueradeCIDRs[1]", msg: "IPv6 is not enabled"},
		}},
	{"many problems JSON", "{\n  \"masqLinkLocal\": \"yes\",\n  \"cidrLimit\": \"64\",\n  \"resyncInterval\": 60,\n  \"nonMasqueradeCIDRs\": [\"10.0.0.1/8\",\n    \"fd00::/8\"]\n}\n", Options{},
		[]want{
			{line: 2, col: 20, field: "masqLinkLocal", msg: "not the string"},
			{line: 3, col: 16, field: "cidrLimit", msg: "not the string"},
			{line: 4, col: 21, field: "resyncInterval", msg: "not a number"},
			{line: 5, col: 26, field: "nonMasqueradeCIDRs[0]", msg: "host bits"},
			{line: 6, col: 5, field: "nonMasqueradeCIDRs[1]", msg: "IPv6 is not enabled"},
		}},
	{"columns count characters", "{\"nonMasqueradeCIDRs\": [\"é\", \"x\"]}", Options{},
		[]want{
			{line: 1, col: 25, field: "nonMasqueradeCIDRs[0]", msg: "is not a CIDR"},
			{line: 1, col: 30, field: "nonMasqueradeCIDRs[1]", msg: "is not a CIDR"},
		}},
	{"BOM does not shift columns", "\ufeff{\"cidrLimit\": -1}", Options{},
		[]want{{line: 1, col: 15, field: "cidrLimit", msg: "is negative"}}},
	{"CRLF lines", "{\r\n\"cidrLimit\": -1\r\n}", Options{},
		[]want{{line: 2, col: 14, field: "cidrLimit", msg: "is negative"}}},
	{"CRLF lines YAML", "masqLinkLocal: true\r\ncidrLimit: -1\r\n", Options{},
		[]want{{line: 2, col: 12, field: "cidrLimit", msg: "is negative"}}},
}

func TestParseProblems(t *testing.T) {
	for _, tt := range problemCases {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.conf", []byte(tt.in), tt.opts)
			if cfg != nil {
				t.Errorf("Parse returned a config with its error: %+v", cfg)
			}
			checkProblems(t, err, "f.conf", tt.wants)
		})
	}
}

func TestParseCapsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("nonMasqueradeCIDRs:\n")
	for range maxProblemsPerFile + 20 {
		b.WriteString("  - banana\n")
	}
	_, err := Parse("f", []byte(b.String()), Options{})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error = %v, want *Error", err)
	}
	if n := len(cerr.Problems); n != maxProblemsPerFile+1 {
		t.Fatalf("%d problems, want %d", n, maxProblemsPerFile+1)
	}
	if last := cerr.Problems[maxProblemsPerFile]; last.Message != "20 more problems not shown" || last.File != "f" {
		t.Errorf("last problem = %+v", last)
	}
}

func TestParseAliasBomb(t *testing.T) {
	// Billion laughs: expanded, i would hold 10^9 entries.
	bomb := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]
nonMasqueradeCIDRs: *i
`
	start := time.Now()
	_, err := Parse("bomb", []byte(bomb), Options{})
	if took := time.Since(start); took > slowParse {
		t.Errorf("Parse took %v", took)
	}
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error = %v, want *Error", err)
	}
	// Ten entries of i that are lists; the nine unknown keys are warnings.
	if len(cerr.Problems) != 10 {
		t.Errorf("got %d problems, want 10:\n%v", len(cerr.Problems), err)
	}
	if p := cerr.Problems[0]; p.Field != "nonMasqueradeCIDRs[0]" || p.Message != "must be a CIDR string, not a list" {
		t.Errorf("problem 0 = %+v", p)
	}
}

// slowParse bounds a parse of a hostile input: an expanded alias bomb or a
// quadratic walk would take minutes, while a loaded two-core machine under
// -race takes over 2 s for the deep nesting that normally takes 0.2 s.
const slowParse = 10 * time.Second

func TestParseDeepNesting(t *testing.T) {
	for _, in := range []string{
		"nonMasqueradeCIDRs: " + strings.Repeat("[", 100000),
		`{"nonMasqueradeCIDRs": ` + strings.Repeat("[", 100000),
		`{"x": ` + strings.Repeat(`{"a":`, 100000),
	} {
		start := time.Now()
		if _, err := Parse("deep", []byte(in), Options{}); err == nil {
			t.Errorf("Parse(%.30q...) succeeded", in)
		}
		if took := time.Since(start); took > slowParse {
			t.Errorf("Parse(%.30q...) took %v", in, took)
		}
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "/etc/config/ip-masq-agent", Line: 3, Column: 5, Field: "nonMasqueradeCIDRs[0]", Message: "10.0.0.1/8 has host bits set", Fix: "did you mean 10.0.0.0/8?"},
		{File: "a.yaml", Line: 2, Message: "invalid YAML: did not find expected key", Fix: "correct the YAML syntax"},
		{File: "b.yaml", Message: "3 more problems not shown"},
		{Field: "cidrLimit", Message: "is negative"},
	}}
	want := "/etc/config/ip-masq-agent:3:5: nonMasqueradeCIDRs[0]: 10.0.0.1/8 has host bits set (fix: did you mean 10.0.0.0/8?)\n" +
		"a.yaml:2: invalid YAML: did not find expected key (fix: correct the YAML syntax)\n" +
		"b.yaml: 3 more problems not shown\n" +
		"cidrLimit: is negative"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}
