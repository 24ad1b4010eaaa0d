// Package cli owns the parts of masqd's command line that do not depend on
// what a command does: the grammar `masqd [COMMAND] [flags and arguments]`
// (Program: the command first, flags among the arguments, help and -h,
// exit code 2 for a wrong command line, ExitError for other codes),
// listing a FlagSet's flags in a help text, the glog flags ip-masq-agent's
// users pass (accepted and ignored), and the logger that --log-level and
// --log-format select.
//
// It must not define masqd's commands or their flags (cmd/masqd does), and
// it keeps no state: every function gets the FlagSet or writer it works on.
package cli
