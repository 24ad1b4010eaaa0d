package main

import (
	"strings"
	"testing"
)

// TestCommandLineHints pins what masqd answers to a command line that is
// almost right.
func TestCommandLineHints(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"help", "help"}, 0, "Usage:\n  masqd help [COMMAND]          print the help of every command, or of one\n", ""},
		{[]string{"help", "render", "check"}, 2, "", "masqd: help takes one command's name (render, check, explain, diff, cleanup, flows), or none for every command\n"},
		{[]string{"version"}, 2, "", "masqd: there is no version command; run masqd --version\n"},
		{[]string{"check", "typo.yaml"}, 1, "", `masqd: check takes no arguments, got ["typo.yaml"]; to read a config file, run masqd check --config typo.yaml` + "\n"},
		{[]string{"render", "typo.yaml"}, 1, "", `masqd: render takes no arguments, got ["typo.yaml"]; to read a config file, run masqd render --config typo.yaml` + "\n"},
		{[]string{"diff", "typo.yaml"}, 2, "", `masqd: diff takes no arguments, got ["typo.yaml"]; to read a config file, run masqd diff --config typo.yaml` + "\n"},
		{[]string{"cleanup", "masqd"}, 1, "", `masqd: cleanup takes no arguments, got ["masqd"]` + "\n"},
	} {
		code, out, errs := runArgs(t, tc.args...)
		if code != tc.code || out != tc.stdout || errs != tc.errs {
			t.Errorf("%q: exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q", tc.args, code, out, errs, tc.code, tc.stdout, tc.errs)
		}
	}
}

// TestHelpCleanupFlags: cleanup lists the flags it uses, and names apart
// the ones it only accepts so that the agent's command line works.
func TestHelpCleanupFlags(t *testing.T) {
	code, out, _ := runArgs(t, "help", "cleanup")
	ignored := "\nAccepted and ignored, so that the agent's command line works here too:\n" +
		"  --config, --enable-ipv6, --nomasq-all-reserved-ranges, --random-fully, --snat-address, --snat-address-ipv6, --to-ports\n"
	if code != 0 || !strings.Contains(out, ignored) {
		t.Fatalf("help cleanup: exit %d, want the line\n%s\nin:\n%s", code, ignored, out)
	}
	used, _, _ := strings.Cut(out, ignored)
	for _, f := range []string{"--to-ports", "--snat-address", "--enable-ipv6", "--config"} {
		if strings.Contains(used, f) {
			t.Errorf("help cleanup describes %s, which does nothing for it:\n%s", f, used)
		}
	}
	for _, f := range []string{"--table name", "--masq-chain name", "--legacy", "--netns path"} {
		if !strings.Contains(used, f) {
			t.Errorf("help cleanup lacks %s:\n%s", f, used)
		}
	}
	// Still accepted, as the agent takes them.
	ns := netns(t)
	code, out, errs := runArgs(t, "cleanup", "--netns=/run/netns/"+ns, "--enable-ipv6", "--to-ports=1024-2048", "--snat-address=192.0.2.1", "--config=/nonexistent")
	if code != 0 || out != "table inet masqd not present\n" {
		t.Errorf("cleanup with the agent's flags: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
