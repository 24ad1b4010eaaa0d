package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// llv6 sets masqLinkLocalIPv6, which a case wants.
func llv6(c *Config) { c.MasqLinkLocalIPv6 = true }

// compatCases are configs ip-masq-agent accepted: what masqd reads from each, and the warnings it gives.
var compatCases = []struct {
	name string
	in   string
	opts Options
	// want changes the defaults into the config wanted.
	want     func(*Config)
	warnings []string
}{{
	name: "YAML 1.1 booleans",
	in:   "masqLinkLocal: yes\nmasqLinkLocalIPv6: Off\n",
	opts: v6,
	want: func(c *Config) { c.MasqLinkLocal = true },
	warnings: []string{
		"f:1:16: masqLinkLocal: yes read as true, as ip-masq-agent did (YAML 1.1) (fix: write true)",
		"f:2:20: masqLinkLocalIPv6: Off read as false, as ip-masq-agent did (YAML 1.1) (fix: write false)",
	},
}, {
	name: "list with no value",
	in:   "nonMasqueradeCIDRs:\n",
	want: func(c *Config) { c.NonMasqueradeCIDRs = []netip.Prefix{} },
	warnings: []string{
		"f:1:20: nonMasqueradeCIDRs: has no value: read as an empty list, as ip-masq-agent did, so every destination is masqueraded " +
			"(but link-local and local ones) (fix: write [] to say so, or remove the key for the defaults)",
	},
}, {
	name: "booleans and cidrLimit with no value",
	in:   "masqLinkLocal: ~\ncidrLimit: null\n",
	want: func(*Config) {},
	warnings: []string{
		"f:1:16: masqLinkLocal: has no value: read as false, as ip-masq-agent did (fix: write false, or remove the key)",
		"f:2:12: cidrLimit: has no value: ignored, as ip-masq-agent ignored it (fix: write a number (0 for no limit), or remove the key)",
	},
}, {
	name: "JSON null",
	in:   `{"nonMasqueradeCIDRs": null, "masqLinkLocalIPv6": null}`,
	opts: v6,
	want: func(c *Config) { c.NonMasqueradeCIDRs = []netip.Prefix{} },
	warnings: []string{
		"f:1:24: nonMasqueradeCIDRs: has no value: read as an empty list, as ip-masq-agent did, so every destination is masqueraded " +
			"(but link-local and local ones) (fix: write [] to say so, or remove the key for the defaults)",
		"f:1:51: masqLinkLocalIPv6: has no value: read as false, as ip-masq-agent did (fix: write false, or remove the key)",
	},
}, {
	name: "unknown key close to a known one",
	in:   "nonMasqueradeCIDRs: [192.0.2.0/24]\nresyncIntervl: 30s\n",
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("192.0.2.0/24") },
	warnings: []string{
		`f:2:1: resyncIntervl: unknown key "resyncIntervl" is ignored, as ip-masq-agent ignored it (fix: did you mean "resyncInterval"?)`,
	},
}, {
	name: "unknown key in snake case, JSON",
	in:   `{"masq_link_local": true}`,
	want: func(*Config) {},
	warnings: []string{
		`f:1:2: masq_link_local: unknown key "masq_link_local" is ignored, as ip-masq-agent ignored it (fix: did you mean "masqLinkLocal"?)`,
	},
}, {
	name: "unknown key far from any",
	in:   "masquerade: all\n",
	want: func(*Config) {},
	warnings: []string{
		`f:1:1: masquerade: unknown key "masquerade" is ignored, as ip-masq-agent ignored it (fix: remove it; the keys are ` +
			"nonMasqueradeCIDRs, masqLinkLocal, masqLinkLocalIPv6, resyncInterval, cidrLimit, masqueradeCIDRs, masqueradeSourceCIDRs)",
	},
}, {
	name: "the ConfigMap manifest",
	in:   "apiVersion: v1\nkind: ConfigMap\n",
	want: func(*Config) {},
	warnings: []string{
		`f:1:1: apiVersion: unknown key "apiVersion" is ignored, as ip-masq-agent ignored it (fix: this is a Kubernetes manifest: ` +
			"masqd reads the ConfigMap's config key as mounted into the pod, not the manifest; give it the mounted file, or the text under data.config)",
		`f:2:1: kind: unknown key "kind" is ignored, as ip-masq-agent ignored it (fix: this is a Kubernetes manifest: ` +
			"masqd reads the ConfigMap's config key as mounted into the pod, not the manifest; give it the mounted file, or the text under data.config)",
	},
}, {
	name: "duplicate key, YAML: the last applies",
	in:   "cidrLimit: 5\nmasqLinkLocal: true\ncidrLimit: 6\n",
	want: func(c *Config) { c.CIDRLimit, c.MasqLinkLocal = 6, true },
	warnings: []string{
		"f:1:1: cidrLimit: duplicate key, ignored: ip-masq-agent applied the one at line 3, column 1, and so does masqd (fix: remove one of them)",
	},
}, {
	name: "duplicate key, JSON: the last applies",
	in:   `{"cidrLimit": 5, "cidrLimit": 6}`,
	want: func(c *Config) { c.CIDRLimit = 6 },
	warnings: []string{
		"f:1:2: cidrLimit: duplicate key, ignored: ip-masq-agent applied the one at line 1, column 18, and so does masqd (fix: remove one of them)",
	},
}, {
	// ip-masq-agent turned YAML into a JSON object with sorted keys:
	// the spelling that sorts last applied, wherever it was written.
	name: "two spellings, YAML: the one that sorts last applies",
	in:   "nonMasqueradeCIDRs: [192.0.2.0/24]\nNonMasqueradeCIDRs: [10.0.0.0/8]\n",
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("192.0.2.0/24") },
	warnings: []string{
		"f:2:1: NonMasqueradeCIDRs: duplicate key, ignored: ip-masq-agent applied the one at line 1, column 1, and so does masqd (fix: remove one of them)",
	},
}, {
	name: "two spellings, JSON: the last applies",
	in:   `{"nonMasqueradeCIDRs": ["192.0.2.0/24"], "NonMasqueradeCIDRs": ["10.0.0.0/8"]}`,
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("10.0.0.0/8") },
	warnings: []string{
		"f:1:2: nonMasqueradeCIDRs: duplicate key, ignored: ip-masq-agent applied the one at line 1, column 42, and so does masqd (fix: remove one of them)",
		`f:1:42: NonMasqueradeCIDRs: read as "nonMasqueradeCIDRs", as ip-masq-agent did (fix: write "nonMasqueradeCIDRs")`,
	},
}, {
	name: "JSON with a trailing comma",
	in:   "{\"nonMasqueradeCIDRs\": [\"192.0.2.0/24\",],}\n",
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("192.0.2.0/24") },
	warnings: []string{
		"f:1:40: invalid JSON: invalid character ']' looking for beginning of value; masqd reads the file as YAML, but ip-masq-agent " +
			`reads a file that starts with "{" as strict JSON and would refuse it, so a rollback to ip-masq-agent would fail (fix: correct the JSON syntax)`,
	},
}, {
	name: "JSON with an unquoted key",
	in:   "{nonMasqueradeCIDRs: [\"192.0.2.0/24\"]}\n",
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("192.0.2.0/24") },
	warnings: []string{
		"f:1:2: invalid JSON: invalid character 'n' looking for beginning of object key string; masqd reads the file as YAML, but ip-masq-agent " +
			`reads a file that starts with "{" as strict JSON and would refuse it, so a rollback to ip-masq-agent would fail (fix: correct the JSON syntax)`,
	},
}, {
	name: "masqLinkLocalIPv6 without --enable-ipv6",
	in:   "masqLinkLocalIPv6: true\n",
	want: llv6,
	warnings: []string{
		"f:1:1: masqLinkLocalIPv6: changes nothing without --enable-ipv6: no IPv6 traffic is masqueraded at all " +
			"(fix: start masqd with --enable-ipv6, or remove the key)",
	},
}, {
	name: "masqLinkLocalIPv6 with --enable-ipv6",
	in:   "masqLinkLocalIPv6: true\n",
	opts: v6,
	want: llv6,
}, {
	name: "--nomasq-all-reserved-ranges with a list",
	in:   "masqLinkLocal: false\nnonMasqueradeCIDRs: [192.0.2.0/24]\n",
	opts: Options{NoMasqAllReservedRanges: true},
	want: func(c *Config) { c.NonMasqueradeCIDRs = prefixes("192.0.2.0/24") },
	warnings: []string{
		"f:2:1: nonMasqueradeCIDRs: replaces the default list, so --nomasq-all-reserved-ranges changes nothing " +
			"(fix: list the reserved ranges you need here and drop the flag, or remove the key to use the flag's list)",
	},
}, {
	name: "--nomasq-all-reserved-ranges without a list",
	in:   "masqLinkLocal: true\n",
	opts: Options{NoMasqAllReservedRanges: true},
	want: func(c *Config) { c.NonMasqueradeCIDRs, c.MasqLinkLocal = reservedCIDRs, true },
}}

// TestCompat pins the compatibility policy: what ip-masq-agent accepted and
// applied, masqd applies the same way, and each such spelling is a warning
// that names the spelling to use. Every warning text is pinned here.
func TestCompat(t *testing.T) {
	for _, tt := range compatCases {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f", []byte(tt.in), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := Default(tt.opts)
			want.Files = []string{"f"}
			tt.want(want)
			if !cfg.Equal(want) {
				t.Errorf("Parse = %s\nwant      %s", cfg.Summary(), want.Summary())
			}
			var got []string
			for _, w := range cfg.Warnings() {
				got = append(got, w.String())
			}
			if diff := cmp.Diff(tt.warnings, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			// --strict: each warning is a problem.
			_, err = Parse("f", []byte(tt.in), Options{EnableIPv6: tt.opts.EnableIPv6, NoMasqAllReservedRanges: tt.opts.NoMasqAllReservedRanges, Strict: true})
			var cerr *Error
			switch {
			case len(tt.warnings) == 0 && err != nil:
				t.Errorf("strict: %v", err)
			case len(tt.warnings) > 0 && !errors.As(err, &cerr):
				t.Errorf("strict: error %v, want *Error", err)
			case len(tt.warnings) > 0 && len(cerr.Problems) != len(tt.warnings):
				t.Errorf("strict: %d problems, want %d:\n%v", len(cerr.Problems), len(tt.warnings), err)
			case len(tt.warnings) > 0 && !strings.HasPrefix(cerr.Problems[0].Message, "strict: "):
				t.Errorf("strict: problem %q does not say it comes from --strict", cerr.Problems[0])
			}
		})
	}
}

// TestYAML11Booleans reads every spelling YAML 1.1 gives a boolean, as
// ip-masq-agent's YAML parser did.
func TestYAML11Booleans(t *testing.T) {
	for _, s := range []string{"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"} {
		want := strings.ContainsAny(s[:1], "yYoO") && !strings.EqualFold(s, "off")
		cfg, err := Parse("f", []byte("masqLinkLocal: "+s+"\n"), Options{})
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if cfg.MasqLinkLocal != want || len(cfg.Warnings()) != 1 {
			t.Errorf("%s: masqLinkLocal=%t, want %t; warnings %v", s, cfg.MasqLinkLocal, want, cfg.Warnings())
		}
	}
}

// TestStrictKeepsErrors: under --strict an invalid file reports its
// problems, not its warnings on top.
func TestStrictKeepsErrors(t *testing.T) {
	_, err := Parse("f", []byte("masqLinkLocal: yes\ncidrLimit: -1\n"), Options{Strict: true})
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Field != keyCIDRLimit {
		t.Errorf("error = %v, want the cidrLimit problem alone", err)
	}
}

func TestRead(t *testing.T) {
	cfg, err := Read(StdinName, strings.NewReader("nonMasqueradeCIDRs: [192.0.2.0/24]\nresyncInterval: 5s\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.NonMasqueradeCIDRs, prefixes("192.0.2.0/24")) || cfg.ResyncInterval != 5*time.Second ||
		!slices.Equal(cfg.Files, []string{StdinName}) {
		t.Errorf("Read = %+v", cfg)
	}
	_, err = Read(StdinName, strings.NewReader("{\"nonMasqueradeCIDRs\": [\"10.0.0.1/8\"]}"), Options{})
	if err == nil || err.Error() != "<stdin>:1:25: nonMasqueradeCIDRs[0]: 10.0.0.1/8 has host bits set (fix: did you mean 10.0.0.0/8?)" {
		t.Errorf("Read of a bad JSON config: %v", err)
	}
	_, err = Read(StdinName, strings.NewReader(strings.Repeat(" ", MaxFileSize+1)), Options{})
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), "read config <stdin>: ") {
		t.Errorf("Read of too much: %v", err)
	}
}

// TestCompatCapsWarnings: a file with hundreds of unknown keys lists the
// first warnings and counts the rest, as problems are.
func TestCompatCapsWarnings(t *testing.T) {
	var b strings.Builder
	for i := range maxProblemsPerFile + 20 {
		fmt.Fprintf(&b, "k%d: 1\n", i)
	}
	cfg, err := Parse("f", []byte(b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.Warnings()
	if len(ws) != maxProblemsPerFile+1 {
		t.Fatalf("%d warnings, want %d", len(ws), maxProblemsPerFile+1)
	}
	if got, want := ws[maxProblemsPerFile].String(), "f: 20 more warnings not shown (fix: fix the ones above and check again)"; got != want {
		t.Errorf("last warning %q, want %q", got, want)
	}
}
