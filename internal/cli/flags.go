package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// IgnoredHere starts the usage of a flag that a command accepts and
// ignores; PrintFlags lists those apart.
const IgnoredHere = "ignored by this command: "

// GlogFlags are the glog/klog flags ip-masq-agent's users pass: accepted
// with a warning, so that swapping the image does not crash-loop the
// DaemonSet.
var GlogFlags = []string{"v", "logtostderr", "alsologtostderr", "stderrthreshold", "log_dir", "log_file", "vmodule", "skip_headers"}

// glogBoolFlags are those of GlogFlags that take no value.
var glogBoolFlags = []string{"logtostderr", "alsologtostderr", "skip_headers"}

// AddGlogFlags defines GlogFlags on fs; each one given is appended to seen.
func AddGlogFlags(fs *flag.FlagSet, seen *[]string) {
	for _, n := range GlogFlags {
		add := func(string) error { *seen = append(*seen, n); return nil }
		if slices.Contains(glogBoolFlags, n) {
			fs.BoolFunc(n, "ignored: ip-masq-agent's glog flag; masqd uses --log-level", add)
		} else {
			fs.Func(n, "ignored: ip-masq-agent's glog flag; masqd uses --log-level", add)
		}
	}
}

// ParseInterleaved parses args with fs, letting flags come after the
// positional arguments too (`explain 10.0.0.1 --config f`), and returns
// those arguments. After "--" every argument is positional.
func ParseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// PrintFlags lists fs's flags for a help text: those named in compat
// (ip-masq-agent's, with its meaning) apart from the others, then the
// names of those whose usage starts with IgnoredHere, then GlogFlags.
func PrintFlags(w io.Writer, fs *flag.FlagSet, compat []string) {
	var ours, theirs, glog, ignored []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case slices.Contains(GlogFlags, f.Name):
			glog = append(glog, f)
		case strings.HasPrefix(f.Usage, IgnoredHere):
			ignored = append(ignored, f)
		case slices.Contains(compat, f.Name):
			theirs = append(theirs, f)
		default:
			ours = append(ours, f)
		}
	})
	for _, g := range []struct {
		title string
		flags []*flag.Flag
	}{{"ip-masq-agent flags (same meaning):", theirs}, {"masqd flags:", ours}} {
		if len(g.flags) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", g.title)
		for _, f := range g.flags {
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(w, "  --%s%s\n      %s%s\n", f.Name, name, usage, defaultText(f))
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(w, "\nAccepted and ignored, so that the agent's command line works here too:\n  %s\n", flagNames(ignored))
	}
	fmt.Fprintf(w, "\nAccepted and ignored with a warning (ip-masq-agent's glog flags):\n  %s\n", flagNames(glog))
}

// flagNames lists flags as "--a, --b".
func flagNames(fs []*flag.Flag) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = "--" + f.Name
	}
	return strings.Join(names, ", ")
}

// defaultText is " (default X)" for flags whose default is not the zero value.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "false":
		return ""
	case "true":
		return " (default true)"
	}
	return fmt.Sprintf(" (default %q)", f.DefValue)
}
