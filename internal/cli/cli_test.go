package cli

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args, want []string
		v          bool
	}{
		{[]string{"a", "-v", "b"}, []string{"a", "b"}, true},
		{[]string{"-v", "a"}, []string{"a"}, true},
		{[]string{"a", "--", "-v"}, []string{"a", "-v"}, false},
		{nil, nil, false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		v := fs.Bool("v", false, "")
		got, err := ParseInterleaved(fs, tc.args)
		if err != nil || !slices.Equal(got, tc.want) || *v != tc.v {
			t.Errorf("%q: %q, -v=%v, %v; want %q, -v=%v", tc.args, got, *v, err, tc.want, tc.v)
		}
	}
}

func TestPrintFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Bool("theirs", true, "their flag")
	fs.String("ours", "x", "our `value`")
	fs.Bool("off", false, IgnoredHere+"something")
	var seen []string
	AddGlogFlags(fs, &seen)
	if err := fs.Parse([]string{"-v=2", "--logtostderr"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"v", "logtostderr"}) {
		t.Errorf("seen glog flags %q, want v and logtostderr", seen)
	}
	var b bytes.Buffer
	PrintFlags(&b, fs, []string{"theirs"})
	want := "\nip-masq-agent flags (same meaning):\n  --theirs\n      their flag (default true)\n" +
		"\nmasqd flags:\n  --ours value\n      our value (default \"x\")\n" +
		"\nAccepted and ignored, so that the agent's command line works here too:\n  --off\n" +
		"\nAccepted and ignored with a warning (ip-masq-agent's glog flags):\n  --alsologtostderr, --log_dir, --log_file, --logtostderr, --skip_headers, --stderrthreshold, --v, --vmodule\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("info", "xml", io.Discard); err == nil || !strings.HasPrefix(err.Error(), "--log-format: ") {
		t.Errorf("format xml: %v, want a --log-format error", err)
	}
	if _, err := NewLogger("loud", "", io.Discard); err == nil || !strings.HasPrefix(err.Error(), "--log-level: ") {
		t.Errorf("level loud: %v, want a --log-level error", err)
	}
	var b bytes.Buffer
	log, err := NewLogger("warn", "", &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if out := b.String(); strings.Contains(out, "hidden") || !strings.HasPrefix(out, "{") {
		t.Errorf("level warn, not a terminal: %q; want JSON without the info line", out)
	}
}

// TestProgramParse: the command comes first, flags may follow arguments,
// a wrong command line is reported with exit code 2, -h prints the help.
func TestProgramParse(t *testing.T) {
	var v bool
	commands := []Command{{"", [][2]string{{"prog", "run"}}}, {"sub", [][2]string{{"prog sub X", "sub"}}}}
	p := &Program{Name: "prog", Head: "head\n", Tail: "tail\n", Commands: commands,
		FlagSet: func(i int, stderr io.Writer) *flag.FlagSet {
			fs := flag.NewFlagSet(commands[i].Name, flag.ContinueOnError)
			fs.SetOutput(stderr)
			fs.Usage = func() {}
			fs.BoolVar(&v, "q", false, "quiet")
			return fs
		}}
	parsed, code, ok := p.Parse([]string{"sub", "x", "-q", "y"}, io.Discard, io.Discard)
	if !ok || parsed.Command != 1 || !slices.Equal(parsed.Args, []string{"x", "y"}) || !v {
		t.Errorf("sub x -q y: %+v, code %d, ok %v, -q=%v", parsed, code, ok, v)
	}
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"nope"}, 2, "", "prog: unknown command \"nope\"; the commands are sub, help\n"},
		{[]string{"sub", "--nope"}, 2, "", "flag provided but not defined: -nope\nprog: run \"prog help sub\" for the flags\n"},
		{[]string{"sub", "-h"}, 0, "Usage:\n  prog sub X                    sub\n\nmasqd flags:\n  --q\n      quiet\n", ""},
		{[]string{"help", "sub", "x"}, 2, "", "prog: help takes one command's name (sub), or none for every command\n"},
	} {
		var stdout, stderr bytes.Buffer
		_, code, ok := p.Parse(tc.args, &stdout, &stderr)
		if ok || code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || stderr.String() != tc.errs {
			t.Errorf("%q: ok %v, exit %d, stdout %q, stderr %q; want exit %d, stdout starting %q, stderr %q",
				tc.args, ok, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.errs)
		}
	}
}
