package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/agent"
	"github.com/masqd/masqd/internal/cli"
	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// env is what a command writes to.
type env struct {
	stdout io.Writer
	stderr io.Writer
	log    *zap.Logger
}

// command is masqd's agent (name "") or one of its sub-commands.
type command struct {
	name string
	// usage lists {synopsis, what it does} lines for the help.
	usage [][2]string
	flags flagGroups
	run   func(ctx context.Context, s *settings, args []string, e env) error
}

// commands are listed in this order in the help; the agent comes first.
var commands = []command{
	{"", [][2]string{
		{"masqd [flags]", "run the agent: watch the config, keep the table in sync"},
		{"masqd --once [flags]", "converge once, then exit"},
	}, flagsRuleset | flagsKernel | flagsAgent | flagsStrict, runMain},
	{"render", [][2]string{{"masqd render [flags]", "print the ruleset as an nft -f script that can be loaded again and again"}}, flagsRuleset, runRender},
	{"check", [][2]string{
		{"masqd check [flags]", "validate the config; exit 1 listing every problem"},
		{"masqd check --config -", "validate the config read from standard input"},
	}, flagsRuleset | flagsStrict, runCheck},
	{"explain", [][2]string{{"masqd explain [flags] IP|PREFIX...", "say whether traffic to each address or prefix is masqueraded, and why"}}, flagsRuleset | flagsKernel | flagsExplain, runExplain},
	{"diff", [][2]string{{"masqd diff [flags]", "show what a sync would change in the kernel's table; exit 0 in sync, 1 if not, 2 on error"}},
		flagsRuleset | flagsKernel, runDiff},
	{"cleanup", [][2]string{
		{"masqd cleanup [flags]", "delete masqd's table, and nothing else"},
		{"masqd cleanup --legacy", "delete ip-masq-agent's chain and jump (iptables-nft) if masqd's table is in place"},
	}, flagsNames | flagsKernel | flagsLegacy, runCleanup},
	{"flows", [][2]string{{"masqd flows [flags]", "list source-NAT translations from conntrack: pod, node address and port, destination"}}, flagsKernel | flagsFlows, runFlows},
}

// program is masqd's command line, storing the flags' values in s and the
// glog flags given in glog.
func program(s *settings, glog *[]string) *cli.Program {
	p := &cli.Program{Name: "masqd", Head: usageHead, Tail: usageTail, Compat: ipMasqAgentFlags,
		More: [][2]string{{"masqd --version", "print the version"}},
		FlagSet: func(i int, stderr io.Writer) *flag.FlagSet {
			return newFlagSet(commands[i].name, commands[i].flags, s, glog, stderr)
		}}
	for _, c := range commands {
		p.Commands = append(p.Commands, cli.Command{Name: c.name, Usage: c.usage})
	}
	return p
}

// run is main without the process: it returns the exit code, 0 on success,
// 1 when the command failed and 2 when the command line is wrong.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := settings{stdin: stdin}
	var glog []string
	parsed, code, ok := program(&s, &glog).Parse(args, stdout, stderr)
	if !ok {
		return code
	}
	cmd, args := &commands[parsed.Command], parsed.Args
	parsed.Flags.Visit(func(f *flag.Flag) { s.configSet = s.configSet || f.Name == "config" })
	if s.showVersion {
		fmt.Fprintln(stdout, cli.Version("masqd", version))
		return 0
	}
	if err := s.validateNames(cmd.flags); err != nil {
		fmt.Fprintf(stderr, "masqd: %v\n", err)
		return 2
	}
	log, err := cli.NewLogger(s.logLevel, s.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "masqd: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	if len(glog) > 0 {
		log.Warn("ignoring ip-masq-agent's glog flags; use --log-level", zap.Strings("flags", glog))
	}
	if err := cmd.run(ctx, &s, args, env{stdout: stdout, stderr: stderr, log: log}); err != nil {
		code := 1
		var ee *cli.ExitError
		if errors.As(err, &ee) {
			code, err = ee.Code, ee.Err
		}
		if err != nil {
			reportError(stderr, &s, err)
		}
		return code
	}
	return 0
}

// reportError prints a config error one problem per line, ending with the
// count, and any other error on one line.
func reportError(w io.Writer, s *settings, err error) {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		fmt.Fprint(w, cerr.Report(config.DisplayName(s.configPath)))
		return
	}
	fmt.Fprintf(w, "masqd: %v\n", kernelHint(s, err))
}

// noArgs refuses arguments.
func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd, args)
	}
	return nil
}

// noConfigArgs refuses arguments to a command that reads the config, saying
// how to give it a file, the likely intent.
func noConfigArgs(cmd string, args []string) error {
	if err := noArgs(cmd, args); err != nil {
		return fmt.Errorf("%w; to read a config file, run masqd %s --config %s", err, cmd, args[0])
	}
	return nil
}

// load reads the config and builds the ruleset with the flags' options,
// which it returns too.
func load(s *settings) (*config.Config, nft.Options, *nft.Ruleset, error) {
	opts, err := s.rulesetOptions()
	if err != nil {
		return nil, nft.Options{}, nil, err
	}
	cfg, err := config.LoadOrRead(s.configPath, s.stdin, s.configOptions())
	if err != nil {
		return nil, nft.Options{}, nil, err
	}
	return cfg, opts, nft.Build(cfg, opts), nil
}

func runMain(ctx context.Context, s *settings, _ []string, e env) error {
	if s.configPath == config.StdinPath {
		return errors.New("--config -: the agent re-reads its config on every change and resync, so it cannot read standard input; give a file or directory")
	}
	if s.once {
		c, a, err := newAgent(s, e.log, nil, nil, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return a.Once(ctx)
	}
	return runAgent(ctx, s, e.stdout, e.log)
}

func runRender(_ context.Context, s *settings, args []string, e env) error {
	if err := noConfigArgs("render", args); err != nil {
		return err
	}
	_, _, rs, err := load(s)
	if err != nil {
		return err
	}
	_, err = io.WriteString(e.stdout, rs.Script())
	return err
}

func runCheck(_ context.Context, s *settings, args []string, e env) error {
	if err := noConfigArgs("check", args); err != nil {
		return err
	}
	// The agent applies the defaults when the config is missing, as
	// ip-masq-agent did; a preflight of a path given by hand must not pass
	// for a typo.
	if _, err := os.Stat(s.configPath); s.configSet && s.configPath != config.StdinPath && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check: --config %s does not exist (without --config, a missing %s means the defaults, as for the agent)", s.configPath, config.DefaultPath)
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	_, err = io.WriteString(e.stdout, nft.CheckText(cfg, opts, rs))
	return err
}

func runCleanup(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("cleanup", args); err != nil {
		return err
	}
	c, err := nft.Open(s.netns)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.legacy {
		return cleanupLegacy(ctx, c, s, e.stdout)
	}
	ok, err := c.Delete(ctx, s.table)
	if err != nil {
		return err
	}
	if ok {
		fmt.Fprintf(e.stdout, "deleted table inet %s\n", s.table)
	} else {
		fmt.Fprintf(e.stdout, "table inet %s not present\n", s.table)
	}
	return nil
}

// cleanupLegacy removes ip-masq-agent's chains and jumps, but only while
// masqd's own chain is in the kernel, unless --force.
func cleanupLegacy(ctx context.Context, c *nft.Conn, s *settings, stdout io.Writer) error {
	opts := nft.Options{Table: s.table, Chain: s.masqChain}
	removed, err := agent.CleanupLegacy(ctx, c, opts, s.force)
	if nerr := (*agent.NotInKernelError)(nil); errors.As(err, &nerr) {
		return fmt.Errorf("refusing to remove ip-masq-agent's rules: %w, so the node would be left without masquerading.\n"+
			"Start masqd (or run masqd --once) first, then run masqd cleanup --legacy again; --force removes them anyway", err)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprint(stdout, agent.NoLegacyText(opts))
	}
	for _, l := range removed {
		fmt.Fprintf(stdout, "removed %s\n", l)
	}
	return err
}
