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
