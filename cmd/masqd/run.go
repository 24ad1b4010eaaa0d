package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/agent"
	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// env is what a command writes to.
type env struct {
	stdout io.Writer
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
	}, flagsRuleset | flagsKernel | flagsAgent, runMain},
	{"render", [][2]string{{"masqd render [flags]", "print the ruleset as nft -f text"}}, flagsRuleset, runRender},
	{"check", [][2]string{{"masqd check [flags]", "validate the config; exit 1 listing every problem"}}, flagsRuleset, runCheck},
	{"explain", [][2]string{{"masqd explain [flags] IP...", "say whether traffic to each address is masqueraded, and why"}}, flagsRuleset | flagsExplain, runExplain},
	{"cleanup", [][2]string{
		{"masqd cleanup [flags]", "delete masqd's table, and nothing else"},
		{"masqd cleanup --legacy", "delete ip-masq-agent's chain and jump (iptables-nft)"},
	}, flagsRuleset | flagsKernel | flagsLegacy, runCleanup},
	{"flows", [][2]string{{"masqd flows [flags]", "list source-NAT translations from conntrack: pod, node address and port, destination"}}, flagsKernel | flagsFlows, runFlows},
}

func lookupCommand(name string) *command {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return &commands[i]
}

// commandNames lists the sub-commands, for error messages.
func commandNames() string {
	var names []string
	for _, c := range commands[1:] {
		names = append(names, c.name)
	}
	return strings.Join(append(names, "help"), ", ")
}

// run is main without the process: it returns the exit code, 0 on success,
// 1 when the command failed and 2 when the command line is wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		return runHelp(args, stdout, stderr)
	}
	cmd := lookupCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "masqd: unknown command %q; the commands are %s\n", name, commandNames())
		return 2
	}
	var s settings
	var glog []string
	fs := newFlagSet(name, cmd.flags, &s, &glog, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if name == "" {
				cmd = nil // masqd -h: every command
			}
			printUsage(stdout, cmd)
			return 0
		}
		fmt.Fprintf(stderr, "masqd: run %q for the flags\n", strings.TrimSpace("masqd help "+name))
		return 2
	}
	if s.showVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if name == "" && fs.NArg() > 0 {
		if c := lookupCommand(fs.Arg(0)); c != nil {
			fmt.Fprintf(stderr, "masqd: the command comes before its flags: masqd %s [flags]\n", c.name)
		} else {
			fmt.Fprintf(stderr, "masqd: unexpected arguments %q; the commands are %s\n", fs.Args(), commandNames())
		}
		return 2
	}
	log, err := newLogger(&s, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "masqd: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	if len(glog) > 0 {
		log.Warn("ignoring ip-masq-agent's glog flags; use --log-level", zap.Strings("flags", glog))
	}
	if err := cmd.run(ctx, &s, fs.Args(), env{stdout: stdout, log: log}); err != nil {
		reportError(stderr, &s, err)
		return 1
	}
	return 0
}

// runHelp prints the help of all commands, or of the one named.
func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout, nil)
		return 0
	}
	cmd := lookupCommand(args[0])
	if len(args) > 1 || cmd == nil || cmd.name == "" {
		fmt.Fprintf(stderr, "masqd: help takes one of %s\n", commandNames())
		return 2
	}
	printUsage(stdout, cmd)
	return 0
}

// reportError prints a config error one problem per line, ending with the
// count, and any other error on one line.
func reportError(w io.Writer, s *settings, err error) {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(w, p)
		}
		fmt.Fprintf(w, "%d problem(s) in %s\n", len(cerr.Problems), s.configPath)
		return
	}
	fmt.Fprintf(w, "masqd: %v\n", err)
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd, args)
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
	cfg, err := config.Load(s.configPath, s.configOptions())
	if err != nil {
		return nil, nft.Options{}, nil, err
	}
	return cfg, opts, nft.Build(cfg, opts), nil
}

func runMain(ctx context.Context, s *settings, _ []string, e env) error {
	if s.once {
		return runOnce(ctx, s, e.log)
	}
	return runAgent(ctx, s, e.log)
}

func runRender(_ context.Context, s *settings, args []string, e env) error {
	if err := noArgs("render", args); err != nil {
		return err
	}
	_, _, rs, err := load(s)
	if err != nil {
		return err
	}
	_, err = io.WriteString(e.stdout, rs.String())
	return err
}

func runCheck(_ context.Context, s *settings, args []string, e env) error {
	if err := noArgs("check", args); err != nil {
		return err
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	ws := cfg.Warnings()
	for _, w := range ws {
		fmt.Fprintln(e.stdout, "warning: "+w.String())
	}
	switch len(ws) {
	case 0:
	case 1:
		fmt.Fprintln(e.stdout, "1 warning; the config is valid and applies as described")
	default:
		fmt.Fprintf(e.stdout, "%d warnings; the config is valid and applies as described\n", len(ws))
	}
	fmt.Fprintf(e.stdout, "ok: %s; %d IPv4 and %d IPv6 intervals after merging\n",
		cfg.Summary(), len(rs.Set(nft.SetV4).Intervals), len(rs.Set(nft.SetV6).Intervals))
	h := nft.ConfigHash(cfg, opts)
	fmt.Fprintf(e.stdout, "config hash: %s (a node that applies this reports masqd_config_info{hash=%q})\n", h, h)
	return nil
}

func openKernel(s *settings) (*nft.Conn, error) {
	c, err := nft.Open(s.netns)
	if err != nil {
		return nil, kernelHint(s, err)
	}
	return c, nil
}

func runCleanup(ctx context.Context, s *settings, args []string, e env) error {
	if err := noArgs("cleanup", args); err != nil {
		return err
	}
	c, err := openKernel(s)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.legacy {
		return cleanupLegacy(ctx, c, s, e.stdout)
	}
	ok, err := c.Delete(ctx, s.table)
	if err != nil {
		return kernelHint(s, err)
	}
	if ok {
		fmt.Fprintf(e.stdout, "deleted table inet %s\n", s.table)
	} else {
		fmt.Fprintf(e.stdout, "table inet %s not present\n", s.table)
	}
	return nil
}

func cleanupLegacy(ctx context.Context, c *nft.Conn, s *settings, stdout io.Writer) error {
	found, err := c.FindLegacy(ctx, legacyExtra(s)...)
	if err != nil {
		return kernelHint(s, err)
	}
	if len(found) == 0 {
		fmt.Fprintln(stdout, "no ip-masq-agent chains in iptables-nft's nat tables.")
		fmt.Fprintln(stdout, "Rules written by iptables-legacy are invisible to nftables; check with: iptables-legacy -t nat -S | grep -i masq")
		fmt.Fprintln(stdout, "and remove them with: iptables-legacy -t nat -D POSTROUTING <the -j IP-MASQ-AGENT rule>; iptables-legacy -t nat -F IP-MASQ-AGENT; iptables-legacy -t nat -X IP-MASQ-AGENT")
		return nil
	}
	if err := c.CleanupLegacy(ctx, found); err != nil {
		return kernelHint(s, err)
	}
	for _, l := range found {
		fmt.Fprintf(stdout, "removed %s\n", l)
	}
	return nil
}

// legacyExtra adds a custom --masq-chain to the names ip-masq-agent used.
func legacyExtra(s *settings) []string {
	if s.masqChain != nft.DefaultChain {
		return []string{s.masqChain}
	}
	return nil
}

// runOnce converges once. Unlike the agent it logs a sync that changed
// nothing at info: it is the command's only answer.
func runOnce(ctx context.Context, s *settings, log *zap.Logger) error {
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	c, err := openKernel(s)
	if err != nil {
		return err
	}
	defer c.Close()
	warnForeignSNAT(s, opts, log)
	start := time.Now()
	res, err := c.Sync(ctx, rs)
	if err != nil {
		return kernelHint(s, err)
	}
	took := time.Since(start)
	if res.Changed() {
		fields := append(agent.SyncFields(res, took, onceReason{}), zap.String("config", cfg.Summary()))
		log.Info("synced", fields...)
	} else {
		log.Info("in sync; nothing changed", zap.String("reason", "once"), zap.Duration("took", took),
			zap.Uint32("generation", res.Generation), zap.String("config", cfg.Summary()))
	}
	warnLegacy(ctx, c, s, log)
	return nil
}

// warnLegacy tells the operator about ip-masq-agent's leftovers and returns
// how many it found.
func warnLegacy(ctx context.Context, c *nft.Conn, s *settings, log *zap.Logger) int {
	found, err := c.FindLegacy(ctx, legacyExtra(s)...)
	if err != nil {
		log.Debug("could not look for ip-masq-agent leftovers", zap.Error(err))
		return 0
	}
	for _, l := range found {
		log.Warn("ip-masq-agent's rules are still installed and run before masqd's; remove them with: masqd cleanup --legacy",
			zap.Stringer("leftover", l), zap.String("iptables_equivalent", l.IptablesCommand()))
	}
	return len(found)
}

// onceReason is why a --once sync ran, in its log line.
type onceReason struct{}

func (onceReason) String() string { return "once" }
