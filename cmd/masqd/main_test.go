package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// runArgs calls run as main does and returns the exit code, stdout and
// stderr. Logs are JSON: stderr is not a terminal.
func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runStdin(t, "", args...)
}

// runStdin is runArgs with stdin as standard input.
func runStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ip-masq-agent")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// missingConfig is a config path where no file exists: the defaults apply.
func missingConfig(t *testing.T) string {
	return filepath.Join(t.TempDir(), "ip-masq-agent")
}

// wantRuleset is what render must print for a config file and options.
func wantRuleset(t *testing.T, path string, copts config.Options, opts nft.Options) string {
	t.Helper()
	cfg, err := config.Load(path, copts)
	if err != nil {
		t.Fatal(err)
	}
	return nft.Build(cfg, opts).Script()
}

func TestRender(t *testing.T) {
	custom := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 192.0.2.0/24]\nmasqLinkLocal: true\n")
	dual := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\n")
	missing := missingConfig(t)
	// ip-masq-agent's defaults, which masqd keeps.
	defaults := nft.Options{Table: "masqd", Chain: "postrouting", RandomFully: true}
	for _, tc := range []struct {
		name  string
		args  []string
		path  string
		copts config.Options
		opts  nft.Options
	}{
		{"defaults", nil, missing, config.Options{}, defaults},
		{"custom file", nil, custom, config.Options{}, defaults},
		{"chain and ports", []string{"--masq-chain=IP-MASQ-AGENT", "--random-fully=false"}, custom, config.Options{},
			nft.Options{Table: "masqd", Chain: "IP-MASQ-AGENT"}},
		{"dual stack in another table", []string{"--enable-ipv6", "--table", "egress"}, dual, config.Options{EnableIPv6: true},
			nft.Options{Table: "egress", Chain: "postrouting", EnableIPv6: true, RandomFully: true}},
		{"all reserved ranges", []string{"--nomasq-all-reserved-ranges"}, missing, config.Options{NoMasqAllReservedRanges: true}, defaults},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"render", "--config", tc.path}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if diff := cmp.Diff(wantRuleset(t, tc.path, tc.copts, tc.opts), out); diff != "" {
				t.Errorf("render differs from nft.Build (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIPMasqAgentFlags passes ip-masq-agent's flags as its DaemonSets do.
func TestIPMasqAgentFlags(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\n")
	for _, args := range [][]string{
		{"--masq-chain=IP-MASQ-AGENT", "--nomasq-all-reserved-ranges", "--enable-ipv6=true", "--random-fully=false", "--v=2", "--logtostderr"},
		{"-masq-chain", "IP-MASQ-AGENT", "-nomasq-all-reserved-ranges", "-enable-ipv6", "-random-fully=false", "-v", "2", "-logtostderr"},
	} {
		code, out, errs := runArgs(t, append([]string{"render", "--config=" + p}, args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errs)
		}
		want := wantRuleset(t, p, config.Options{EnableIPv6: true, NoMasqAllReservedRanges: true},
			nft.Options{Table: "masqd", Chain: "IP-MASQ-AGENT", EnableIPv6: true})
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("%q: render (-want +got):\n%s", args, diff)
		}
		wantLog := `"msg":"ignoring ip-masq-agent's glog flags; use --log-level","flags":["v","logtostderr"]}`
		if !strings.HasPrefix(errs, `{"level":"warn"`) || !strings.HasSuffix(errs, wantLog+"\n") {
			t.Errorf("%q: want one JSON warning ending in %s, got:\n%s", args, wantLog, errs)
		}
	}
	// ip-masq-agent's --to-ports cannot be honoured yet: refused, not ignored.
	code, _, errs := runArgs(t, "render", "--config", p, "--enable-ipv6", "--to-ports=1024-2048")
	if code != 1 || errs != "masqd: "+nft.ErrToPortsRefused.Error()+"\n" {
		t.Errorf("--to-ports=1024-2048: exit %d: %s", code, errs)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"a": "nonMasqueradeCIDRs: [10.0.0.0/9, 10.128.0.0/9]\n", "b": "nonMasqueradeCIDRs: [fd00::/8, 192.0.2.0/24]\n", "..data": "garbage: ["} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name      string
		path      string
		args      []string
		copts     config.Options
		intervals string
	}{
		{"defaults", t.TempDir(), nil, config.Options{}, "3 IPv4 and 0 IPv6"},
		{"file with nested entries", writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 10.1.0.0/16, 10.1.2.0/24]\n"), nil, config.Options{}, "1 IPv4 and 0 IPv6"},
		{"directory", dir, []string{"--enable-ipv6"}, config.Options{EnableIPv6: true}, "2 IPv4 and 1 IPv6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"check", "--config", tc.path}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			cfg, err := config.Load(tc.path, tc.copts)
			if err != nil {
				t.Fatal(err)
			}
			opts := nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true}
			opts.EnableIPv6 = tc.copts.EnableIPv6
			h := nft.ConfigHash(cfg, opts)
			want := "ok: " + cfg.Summary() + "; " + tc.intervals + " intervals after merging\n" +
				"config hash: " + h + " (a node that applies this reports masqd_config_info{hash=\"" + h + "\"})\n"
			if out != want {
				t.Errorf("got  %q\nwant %q", out, want)
			}
		})
	}
}

// TestCheckPreflight: check reads standard input, prints every warning, and
// under --strict fails on them; a --config given by hand must exist.
func TestCheckPreflight(t *testing.T) {
	const sloppy = "masqLinkLocal: yes\n"
	warning := "warning: <stdin>:1:16: masqLinkLocal: yes read as true, as ip-masq-agent did (YAML 1.1) (fix: write true)\n"
	cfg, err := config.Read(config.StdinName, strings.NewReader(sloppy), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hash := nft.ConfigHash(cfg, nft.Options{Table: nft.DefaultTable, Chain: nft.DefaultChain, RandomFully: true})
	ok := "ok: " + cfg.Summary() + "; 3 IPv4 and 0 IPv6 intervals after merging\n" +
		"config hash: " + hash + " (a node that applies this reports masqd_config_info{hash=\"" + hash + "\"})\n"
	if !strings.Contains(ok, "from <stdin>") {
		t.Errorf("summary %q does not name <stdin>", ok)
	}
	missing := missingConfig(t)
	for _, tc := range []struct {
		name, stdin    string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"stdin with a warning", sloppy, []string{"--config", "-"}, 0,
			warning + "1 warning; the config is valid and applies as described\n" + ok, ""},
		{"stdin, --strict", sloppy, []string{"--config", "-", "--strict"}, 1, "",
			"<stdin>:1:16: masqLinkLocal: strict: yes read as true, as ip-masq-agent did (YAML 1.1) (fix: write true)\n1 problem(s) in <stdin>\n"},
		{"stdin, JSON with a problem", `{"nonMasqueradeCIDRs": ["10.0.0.1/8"]}`, []string{"--config=-"}, 1, "",
			"<stdin>:1:25: nonMasqueradeCIDRs[0]: 10.0.0.1/8 has host bits set (fix: did you mean 10.0.0.0/8?)\n1 problem(s) in <stdin>\n"},
		{"missing file given by hand", "", []string{"--config", missing}, 1, "",
			"masqd: check: --config " + missing + " does not exist (without --config, a missing /etc/config/ip-masq-agent means the defaults, as for the agent)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runStdin(t, tc.stdin, append([]string{"check"}, tc.args...)...)
			if code != tc.code || out != tc.stdout || errs != tc.stderr {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s", code, tc.code, out, tc.stdout, errs, tc.stderr)
			}
		})
	}
	// render and explain read standard input too; the agent cannot.
	if code, out, errs := runStdin(t, "nonMasqueradeCIDRs: []\n", "render", "--config", "-"); code != 0 || strings.Contains(out, "elements") {
		t.Errorf("render --config -: exit %d, %s%s", code, out, errs)
	}
	// The agent takes --strict too: a sloppy config is then invalid, and
	// --once fails before it touches the kernel.
	sloppyFile := writeConfig(t, sloppy)
	code, _, errs := runArgs(t, "--once", "--strict", "--config", sloppyFile)
	if want := sloppyFile + ":1:16: masqLinkLocal: strict: yes read as true, as ip-masq-agent did (YAML 1.1) (fix: write true)\n1 problem(s) in " + sloppyFile + "\n"; code != 1 || errs != want {
		t.Errorf("agent --strict: exit %d, %q", code, errs)
	}
	code, _, errs = runArgs(t, "--once", "--config", "-")
	if want := "masqd: --config -: the agent re-reads its config on every change and resync, so it cannot read standard input; give a file or directory\n"; code != 1 || errs != want {
		t.Errorf("agent with --config -: exit %d, %q", code, errs)
	}
}

func TestCheckInvalid(t *testing.T) {
	p := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.1/8, fd00::/8]\nresyncInterval: 5\n")
	code, out, errs := runArgs(t, "check", "--config", p)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	want := []string{p + ":1:22: nonMasqueradeCIDRs[0]:", p + ":1:34: nonMasqueradeCIDRs[1]:", p + ":2:17: resyncInterval:", "3 problem(s) in " + p}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got:\n%s", len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start with %q", i+1, lines[i], w)
		}
	}
	// Every command that reads the config reports it the same way.
	if code, _, errs2 := runArgs(t, "render", "--config", p); code != 1 || errs2 != errs {
		t.Errorf("render: exit %d:\n%s\nwant:\n%s", code, errs2, errs)
	}
}

func TestExplain(t *testing.T) {
	nested := writeConfig(t, "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.1.0.0/16\n")
	adjacent := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/9, 10.128.0.0/9]\n")
	dual := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, fd00::/8]\n")
	onlyLinkLocal := writeConfig(t, "masqLinkLocal: true\n")
	exceptions := writeConfig(t, "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.20.30.0/24\n"+
		"masqueradeCIDRs:\n  - 10.20.0.0/16\n  - 169.254.169.254/32\nmasqueradeSourceCIDRs: [10.244.0.0/16]\n")
	missing := missingConfig(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"in a nested CIDR", []string{"--config", nested, "10.1.2.3"},
			`10.1.2.3: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8 at ` + nested + `:2, 10.1.0.0/16 at ` + nested + `:3)`},
		{"in merged neighbours", []string{"--config", adjacent, "10.200.0.1"},
			`10.200.0.1: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.128.0.0/9 at ` + adjacent + `:1)`},
		{"a file that keeps the default list", []string{"--config", onlyLinkLocal, "10.0.0.1"},
			`10.0.0.1: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8, a default)`},
		{"an exception", []string{"--config", exceptions, "10.20.1.1"},
			`10.20.1.1: masqueraded: decided by 10.20.0.0/16 in masqueradeCIDRs (` + exceptions + `:5), the most specific entry; ` +
				`it overrides 10.0.0.0/8 in nonMasqueradeCIDRs (` + exceptions + `:2); ` +
				`this holds for sources in masqueradeSourceCIDRs, others are not masqueraded (ask with --source)`},
		{"exempt inside an exception", []string{"--config", exceptions, "--source", "10.244.1.2", "10.20.30.1"},
			`10.20.30.1: not masqueraded: decided by 10.20.30.0/24 in nonMasqueradeCIDRs (` + exceptions + `:3), the most specific entry; ` +
				`it overrides 10.20.0.0/16 in masqueradeCIDRs (` + exceptions + `:5)`},
		{"an exception inside link-local", []string{"--config", exceptions, "--source", "10.244.1.2", "169.254.169.254"},
			`169.254.169.254: masqueraded: decided by 169.254.169.254/32 in masqueradeCIDRs (` + exceptions + `:6), the most specific entry; ` +
				`it overrides 169.254.0.0/16 in the link-local exemption (masqLinkLocal: false)`},
		{"exempt, nothing overridden", []string{"--config", exceptions, "10.9.9.9"},
			`10.9.9.9: not masqueraded: decided by 10.0.0.0/8 in nonMasqueradeCIDRs (` + exceptions + `:2)`},
		{"outside every entry", []string{"--config", exceptions, "--snat-address", "192.0.2.10", "--source", "10.244.1.2", "8.8.8.8"},
			`8.8.8.8: masqueraded (snat to 192.0.2.10): no nonMasqueradeCIDRs entry contains it (rule 5: "masqd: outbound IPv4 is translated to --snat-address")`},
		{"another source", []string{"--config", exceptions, "--source", "100.115.0.1", "8.8.8.8"},
			`8.8.8.8: not masqueraded (rule 2: "masqd: only masqueradeSourceCIDRs are masqueraded")`},
		{"snat without exceptions", []string{"--config", nested, "--snat-address", "192.0.2.10", "8.8.8.8"},
			`8.8.8.8: masqueraded (snat to 192.0.2.10) (rule 5: "masqd: outbound IPv4 is translated to --snat-address")`},
		{"defaults", []string{"--config", missing, "192.168.1.1"},
			`192.168.1.1: not masqueraded: in nonMasqueradeCIDRs 192.168.0.0/16 (from 192.168.0.0/16 in the defaults; no config file at ` + missing + `)`},
		{"mapped IPv4", []string{"--config", missing, "::ffff:10.0.0.1"},
			`10.0.0.1: not masqueraded: in nonMasqueradeCIDRs 10.0.0.0/8 (from 10.0.0.0/8 in the defaults; no config file at ` + missing + `)`},
		{"outside", []string{"--config", nested, "203.0.113.7"},
			`203.0.113.7: masqueraded (rule 5: "masqd: outbound traffic is masqueraded")`},
		{"link-local", []string{"--config", nested, "169.254.169.254"},
			`169.254.169.254: not masqueraded (rule 2: "masqd: link-local is not masqueraded (masqLinkLocal: false)")`},
		{"IPv6 disabled", []string{"--config", missing, "2001:db8::1"},
			`2001:db8::1: not masqueraded (rule 4: "masqd: IPv6 is not masqueraded (--enable-ipv6=false)")`},
		{"IPv6 enabled, in a CIDR", []string{"--config", dual, "--enable-ipv6", "fd00::1"},
			`fd00::1: not masqueraded: in nonMasqueradeCIDRs fd00::/8 (from fd00::/8 at ` + dual + `:1)`},
		{"IPv6 enabled, outside", []string{"--config", dual, "--enable-ipv6", "2001:db8::1"},
			`2001:db8::1: masqueraded (rule 6: "masqd: outbound traffic is masqueraded")`},
		{"IPv6 link-local", []string{"--config", dual, "--enable-ipv6", "fe80::1"},
			`fe80::1: not masqueraded (rule 4: "masqd: link-local is not masqueraded (masqLinkLocalIPv6: false)")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runArgs(t, append([]string{"explain"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if out != tc.want+"\n" {
				t.Errorf("got  %s\nwant %s", out, tc.want)
			}
		})
	}
	t.Run("several addresses, one line each", func(t *testing.T) {
		_, out, _ := runArgs(t, "explain", "--config", nested, "10.1.2.3", "203.0.113.7", "169.254.169.254")
		if n := strings.Count(out, "\n"); n != 3 {
			t.Errorf("%d lines, want 3:\n%s", n, out)
		}
	})
}

func TestBadCommandLine(t *testing.T) {
	cfg := missingConfig(t)
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"render", "--config", cfg, "--to-ports=70000"}, 1, "masqd: --to-ports is not supported yet: "},
		{[]string{"render", "--config", cfg, "extra"}, 1, `render takes no arguments, got ["extra"]`},
		{[]string{"explain", "--config", cfg}, 1, "masqd: explain needs one or more IP addresses or prefixes\n"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"; the commands are render, check, explain, diff, cleanup, flows, help`},
		{[]string{"--config", cfg, "render"}, 2, "the command comes before its flags: masqd render [flags]"},
		{[]string{"--config", cfg, "10.0.0.1"}, 2, `unexpected arguments ["10.0.0.1"]`},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"render", "--once"}, 2, "flag provided but not defined: -once"},
		{[]string{"check", "--netns=/run/netns/x"}, 2, "flag provided but not defined: -netns"},
		{[]string{"render", "--log-level=loud"}, 2, "--log-level: "},
		{[]string{"render", "--log-format=xml"}, 2, `--log-format: "xml" is neither json nor console`},
		{[]string{"help", "frobnicate"}, 2, "masqd: help takes one command's name (render, check, explain, diff, cleanup, flows), or none for every command\n"},
		{[]string{"render", "--config", cfg, "--snat-address", "node"}, 1, `--snat-address: "node" is not an IP address`},
		{[]string{"render", "--config", cfg, "--snat-address", "2001:db8::1"}, 1, "--snat-address: 2001:db8::1 is not an IPv4 address; use --snat-address-ipv6 for it"},
		{[]string{"render", "--config", cfg, "--snat-address", "0.0.0.0"}, 1, "--snat-address: 0.0.0.0 cannot be a source address"},
		{[]string{"render", "--config", cfg, "--snat-address-ipv6", "2001:db8::1"}, 1, "--snat-address-ipv6 needs --enable-ipv6"},
		{[]string{"explain", "--config", cfg, "--source", "pod", "10.0.0.1"}, 1, `explain: --source "pod" is not an IP address`},
		{[]string{"render", "--config", cfg, "--masq-chain=bad chain"}, 2, `masqd: --masq-chain "bad chain": nftables names cannot have ' ' at byte 4 (fix: use letters, digits, '-', '_', '.' or '/', starting with a letter, e.g. masqd or IP-MASQ-AGENT)` + "\n"},
		{[]string{"--once", "--config", cfg, "--table=" + strings.Repeat("t", 300)}, 2, "masqd: --table is 300 bytes long; nftables takes at most 255 (fix: a shorter name)\n"},
		{[]string{"cleanup", "--table=counter"}, 2, `masqd: --table "counter" is an nft keyword, so nft could not read the ruleset (fix: another name, e.g. counter-masq)` + "\n"},
	} {
		code, out, errs := runArgs(t, tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errs, tc.inStderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr with %q", tc.args, code, out, errs, tc.code, tc.inStderr)
		}
	}
}

// TestCheckWarnings: conflicts between drop-in files are warnings that name
// both files and lines; the config is still valid.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"base.yaml":  "nonMasqueradeCIDRs:\n  - 10.0.0.0/8\n  - 10.20.0.0/16\n",
		"team.yaml":  "masqueradeCIDRs:\n  - 10.20.0.0/16\n",
		"other.json": `{"masqueradeCIDRs": ["8.8.8.0/24"]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := runArgs(t, "check", "--config", dir)
	want := "warning: " + filepath.Join(dir, "other.json") + ":1: masqueradeCIDRs: 8.8.8.0/24 is not inside any nonMasqueradeCIDRs entry, " +
		"so it is masqueraded anyway (fix: remove it, or add the wider range it is an exception to to nonMasqueradeCIDRs)\n" +
		"warning: " + filepath.Join(dir, "team.yaml") + ":2: masqueradeCIDRs: 10.20.0.0/16 is also exempted by nonMasqueradeCIDRs in " +
		filepath.Join(dir, "base.yaml") + ":3; masquerading wins (fix: keep it in one of the two files)\n" +
		"2 warnings; the config is valid and applies as described\nok: "
	if code != 0 || errs != "" || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant it to start with:\n%s", code, errs, out, want)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs(t, "--version")
	re := regexp.MustCompile(`^masqd \S+ \(go1\.[0-9.]+[^,]*, ` + runtime.GOOS + "/" + runtime.GOARCH + `\)\n$`)
	if code != 0 || !re.MatchString(out) {
		t.Errorf("--version: exit %d, %q; want a match for %s", code, out, re)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, errs := runArgs(t, args...)
		if code != 0 || errs != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errs)
		}
		// Sections and flags in order: commands, ip-masq-agent's flags, masqd's.
		order := []string{"masqd render [flags]", "masqd check [flags]", "masqd explain [flags] IP|PREFIX...", "masqd cleanup [flags]",
			"masqd cleanup --legacy", "masqd help [COMMAND]", "masqd --version",
			"ip-masq-agent flags (same meaning):", "--enable-ipv6", "--masq-chain name", "--to-ports ranges",
			"masqd flags:", "--config path", "--netns path", "--once", "--version",
			"ignored with a warning (ip-masq-agent's glog flags):", "--logtostderr"}
		at := 0
		for _, w := range order {
			i := strings.Index(out[at:], w)
			if i < 0 {
				t.Fatalf("%q: %q missing or out of order in:\n%s", args, w, out)
			}
			at += i + len(w)
		}
	}
	code, out, _ := runArgs(t, "help", "render")
	if code != 0 || !strings.Contains(out, "masqd render [flags]") || !strings.Contains(out, "--masq-chain") || strings.Contains(out, "--once") {
		t.Errorf("help render: exit %d:\n%s", code, out)
	}
	if code, out2, _ := runArgs(t, "render", "-h"); code != 0 || out2 != out {
		t.Errorf("render -h: exit %d, differs from help render:\n%s", code, out2)
	}
	if _, out, _ := runArgs(t, "help", "cleanup"); !strings.Contains(out, "--legacy") || !strings.Contains(out, "--netns") {
		t.Errorf("help cleanup lacks --legacy or --netns:\n%s", out)
	}
}

func TestKernelHint(t *testing.T) {
	for _, tc := range []struct {
		err   error
		netns string
		want  string
	}{
		{fmt.Errorf("get generation: %w", syscall.EPERM), "", "get generation: operation not permitted\nmasqd needs CAP_NET_ADMIN (run as root or grant the capability)"},
		{fmt.Errorf("setns: %w", syscall.EPERM), "/run/netns/x", "setns: operation not permitted\nmasqd needs CAP_NET_ADMIN (run as root or grant the capability); entering --netns also needs CAP_SYS_ADMIN"},
		{fmt.Errorf("open: %w", os.ErrPermission), "", "open: permission denied\nmasqd needs CAP_NET_ADMIN (run as root or grant the capability)"},
		{errors.New("something else"), "", "something else"},
		{fmt.Errorf("read config: %w", &fs.PathError{Op: "open", Path: "/etc/config/ip-masq-agent", Err: syscall.EACCES}), "",
			"read config: open /etc/config/ip-masq-agent: permission denied"},
	} {
		got := kernelHint(&settings{netns: tc.netns}, tc.err)
		if got.Error() != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("kernelHint(%v) = %q, want %q wrapping the error", tc.err, got, tc.want)
		}
	}
}
