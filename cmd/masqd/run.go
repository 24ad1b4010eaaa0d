package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"go.uber.org/zap"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

var subcommands = map[string]func(ctx context.Context, s *settings, args []string, stdout io.Writer, log *zap.Logger) error{
	"render":  runRender,
	"check":   runCheck,
	"explain": runExplain,
	"cleanup": runCleanup,
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" {
		cmd, args = "", []string{"-h"}
	}
	sub, ok := subcommands[cmd]
	if cmd != "" && !ok {
		fmt.Fprintf(stderr, "masqd: unknown command %q (see masqd --help)\n", cmd)
		return 2
	}
	var s settings
	var glog []string
	fs := newFlagSet("masqd", &s, &glog, stderr)
	if cmd == "cleanup" {
		fs.BoolVar(&s.legacy, "legacy", false, "remove ip-masq-agent's leftovers (iptables-nft) instead of masqd's table")
	}
	fs.Usage = func() { printUsage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if s.showVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
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
	switch {
	case sub != nil:
		err = sub(ctx, &s, fs.Args(), stdout, log)
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q (see masqd --help)", fs.Args())
	case s.once:
		err = runOnce(ctx, &s, log)
	default:
		err = runAgent(ctx, &s, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "masqd: %v\n", err)
		return 1
	}
	return 0
}

// load reads the config and builds the ruleset.
func load(s *settings) (*config.Config, *nft.Ruleset, error) {
	opts, err := s.rulesetOptions()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(s.configPath, s.configOptions())
	if err != nil {
		return nil, nil, err
	}
	return cfg, nft.Build(cfg, opts), nil
}

func runRender(_ context.Context, s *settings, args []string, stdout io.Writer, _ *zap.Logger) error {
	if len(args) > 0 {
		return fmt.Errorf("render takes no arguments, got %q", args)
	}
	_, rs, err := load(s)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, rs.String())
	return err
}

func runCheck(_ context.Context, s *settings, args []string, stdout io.Writer, _ *zap.Logger) error {
	if len(args) > 0 {
		return fmt.Errorf("check takes no arguments, got %q", args)
	}
	cfg, rs, err := load(s)
	if err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			return fmt.Errorf("%w\n%d problem(s) in %s", err, len(cerr.Problems), s.configPath)
		}
		return err
	}
	fmt.Fprintf(stdout, "ok: %s; %d IPv4 and %d IPv6 intervals after merging\n",
		cfg.Summary(), len(rs.Set(nft.SetV4).Intervals), len(rs.Set(nft.SetV6).Intervals))
	return nil
}

func runExplain(_ context.Context, s *settings, args []string, stdout io.Writer, _ *zap.Logger) error {
	if len(args) == 0 {
		return errors.New("explain needs one or more IP addresses")
	}
	var addrs []netip.Addr
	for _, a := range args {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("explain: %q is not an IP address", a)
		}
		addrs = append(addrs, ip.Unmap())
	}
	cfg, rs, err := load(s)
	if err != nil {
		return err
	}
	local := localAddrs()
	for _, ip := range addrs {
		fmt.Fprintln(stdout, explain(cfg, rs, ip, local[ip]))
	}
	return nil
}

func explain(cfg *config.Config, rs *nft.Ruleset, ip netip.Addr, local bool) string {
	v := rs.Trace(nft.Packet{Dst: ip, Local: local})
	verdict := "not masqueraded"
	if v.Masquerade {
		verdict = "masqueraded"
	}
	why := fmt.Sprintf("rule %d: %q", v.Rule, v.Comment)
	if v.Rule < 0 {
		why = "no rule matched; the chain's policy accepts"
	}
	out := fmt.Sprintf("%s: %s (%s)", ip, verdict, why)
	if v.Interval.First.IsValid() {
		var from []string
		for _, p := range cfg.NonMasqueradeCIDRs {
			if p.Contains(ip) {
				from = append(from, p.String())
			}
		}
		src := strings.Join(cfg.Files, ", ")
		if src == "" {
			src = "the defaults"
		}
		out += fmt.Sprintf("; in nonMasqueradeCIDRs interval %s (from %s in %s)", v.Interval, strings.Join(from, ", "), src)
	}
	if local {
		out += "; the address is local to this node"
	}
	return out
}

// localAddrs are the addresses of this network namespace's interfaces.
func localAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return m
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr().Unmap()] = true
		}
	}
	return m
}

func openKernel(s *settings) (*nft.Conn, error) {
	c, err := nft.Open(s.netns)
	if err != nil {
		return nil, kernelHint(err)
	}
	return c, nil
}

func runCleanup(ctx context.Context, s *settings, args []string, stdout io.Writer, _ *zap.Logger) error {
	if len(args) > 0 {
		return fmt.Errorf("cleanup takes no arguments, got %q", args)
	}
	c, err := openKernel(s)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.legacy {
		return cleanupLegacy(ctx, c, s, stdout)
	}
	ok, err := c.Delete(ctx, s.table)
	if err != nil {
		return kernelHint(err)
	}
	if ok {
		fmt.Fprintf(stdout, "deleted table inet %s\n", s.table)
	} else {
		fmt.Fprintf(stdout, "table inet %s not present\n", s.table)
	}
	return nil
}

func cleanupLegacy(ctx context.Context, c *nft.Conn, s *settings, stdout io.Writer) error {
	found, err := c.FindLegacy(ctx, legacyExtra(s)...)
	if err != nil {
		return kernelHint(err)
	}
	if len(found) == 0 {
		fmt.Fprintln(stdout, "no ip-masq-agent chains in iptables-nft's nat tables.")
		fmt.Fprintln(stdout, "Rules written by iptables-legacy are invisible to nftables; check with: iptables-legacy -t nat -S | grep -i masq")
		fmt.Fprintln(stdout, "and remove them with: iptables-legacy -t nat -D POSTROUTING <the -j IP-MASQ-AGENT rule>; iptables-legacy -t nat -F IP-MASQ-AGENT; iptables-legacy -t nat -X IP-MASQ-AGENT")
		return nil
	}
	if err := c.CleanupLegacy(ctx, found); err != nil {
		return kernelHint(err)
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

func runOnce(ctx context.Context, s *settings, log *zap.Logger) error {
	cfg, rs, err := load(s)
	if err != nil {
		return err
	}
	c, err := openKernel(s)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := c.Sync(ctx, rs)
	if err != nil {
		return kernelHint(err)
	}
	fields := []zap.Field{zap.Stringer("op", res.Op), zap.String("config", cfg.Summary()), zap.Uint32("generation", res.Generation)}
	for _, sc := range res.Sets {
		fields = append(fields, zap.Dict(sc.Name, zap.Int("added", sc.Added), zap.Int("removed", sc.Removed)))
	}
	if res.Changed() {
		log.Info("synced", fields...)
	} else {
		log.Info("in sync; nothing changed", fields...)
	}
	warnLegacy(ctx, c, s, log)
	return nil
}

// warnLegacy tells the operator about ip-masq-agent's leftovers.
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
