package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/cli"
	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// settings are every flag's value.
type settings struct {
	// ip-masq-agent's flags.
	masqChain   string
	allReserved bool
	enableIPv6  bool
	randomFully bool
	toPorts     string
	// masqd's own.
	configPath    string
	table         string
	snatV4        string
	snatV6        string
	source        string
	once          bool
	logLevel      string
	logFormat     string
	netns         string
	metricsAddr   string
	healthAddr    string
	cleanupOnExit bool
	showVersion   bool
	removeLegacy  bool
	legacy        bool
	force         bool
	strict        bool

	// configSet says --config was given; stdin is what --config - reads.
	configSet bool
	stdin     io.Reader

	// conntrackReconcile is --conntrack-reconcile: off, udp or all.
	conntrackReconcile string
	// flows' filters.
	flowPort, flowPod, flowDst string
	// translationLog is --translation-log: a path, "-" for stdout, or "" (off).
	translationLog       string
	translationLogBuffer int
}

// flagGroups says which flags a command takes; every command takes the
// logging flags.
type flagGroups uint

const (
	// flagsRuleset: ip-masq-agent's flags, --config and --table.
	flagsRuleset flagGroups = 1 << iota
	// flagsKernel: --netns.
	flagsKernel
	// flagsAgent: --once, the HTTP addresses, --cleanup-on-exit,
	// --remove-legacy-rules, --version.
	flagsAgent
	// flagsLegacy: cleanup's --legacy and --force.
	flagsLegacy
	// flagsExplain: explain's --source.
	flagsExplain
	// flagsStrict: --strict, for the agent and check.
	flagsStrict
	// flagsNames: --table and --masq-chain; the other ruleset flags are
	// accepted and ignored, so that cleanup takes the agent's command line.
	flagsNames
	// flagsFlows: flows' --port, --pod and --destination.
	flagsFlows
)

// ipMasqAgentFlags are the flags ip-masq-agent defines, with its meaning.
var ipMasqAgentFlags = []string{"masq-chain", "nomasq-all-reserved-ranges", "enable-ipv6", "random-fully", "to-ports"}

// newFlagSet defines the flags of the command named name that groups
// selects, storing their values in s and the names of ignored glog flags
// in seenGlog. Parse errors go to stderr; run prints the usage.
func newFlagSet(name string, groups flagGroups, s *settings, seenGlog *[]string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	if groups&(flagsRuleset|flagsNames) != 0 {
		fs.StringVar(&s.masqChain, "masq-chain", nft.DefaultChain, "`name` of the NAT chain inside masqd's table; ip-masq-agent named its iptables chain with it, and its IP-MASQ-AGENT is accepted")
		fs.StringVar(&s.table, "table", nft.DefaultTable, "`name` of the inet table masqd owns")
		// With the names alone, the flags that shape the ruleset are
		// accepted into a throw-away value.
		t, ign := s, ""
		if groups&flagsRuleset == 0 {
			t, ign = &settings{}, cli.IgnoredHere
		}
		fs.BoolVar(&t.allReserved, "nomasq-all-reserved-ranges", false, ign+"leave every reserved IPv4 range unmasqueraded by default: 100.64/10, 192.0.0/24, 192.0.2/24, 192.88.99/24, 198.18/15, 198.51.100/24, 203.0.113/24 and 240/4 besides RFC 1918")
		fs.BoolVar(&t.enableIPv6, "enable-ipv6", false, ign+"masquerade IPv6 too, and allow IPv6 nonMasqueradeCIDRs")
		fs.BoolVar(&t.randomFully, "random-fully", true, ign+"masquerade with fully random source ports")
		fs.StringVar(&t.toPorts, "to-ports", "", ign+"source port `ranges` for masqueraded TCP and UDP, e.g. 1024-29999,32768-65535; refused for now, see README.md")
		fs.StringVar(&t.configPath, "config", config.DefaultPath, ign+"read the config from `path`: a file, or a directory of files such as a ConfigMap mount; - is standard input (not for the agent)")
		fs.StringVar(&t.snatV4, "snat-address", "", ign+"translate masqueraded IPv4 traffic to this `address` (snat) instead of the outgoing interface's; in a DaemonSet, fill it per node, e.g. from $(NODE_IP)")
		fs.StringVar(&t.snatV6, "snat-address-ipv6", "", ign+"translate masqueraded IPv6 traffic to this `address`; needs --enable-ipv6")
	}
	if groups&flagsKernel != 0 {
		fs.StringVar(&s.netns, "netns", "", "operate on the network namespace at `path`, e.g. /run/netns/NAME; for tests and demos (default: the current one)")
	}
	if groups&flagsAgent != 0 {
		fs.BoolVar(&s.once, "once", false, "converge once, then exit 0, or 1 with the reason")
		fs.StringVar(&s.metricsAddr, "metrics-bind-address", "127.0.0.1:9761", "serve /metrics on `address`; 0 disables")
		fs.StringVar(&s.healthAddr, "health-bind-address", "0.0.0.0:9762", "serve /healthz and /readyz on `address`; 0 disables")
		fs.BoolVar(&s.cleanupOnExit, "cleanup-on-exit", false, "delete masqd's table on SIGTERM/SIGINT (by default the rules stay, so pods keep egress during an update)")
		fs.BoolVar(&s.removeLegacy, "remove-legacy-rules", false, "remove ip-masq-agent's chain and its jump from POSTROUTING (iptables-nft) whenever masqd's table is in sync and masqd is ready, never before: the migration in one rollout")
		fs.BoolVar(&s.showVersion, "version", false, "print the version and exit")
		fs.StringVar(&s.translationLog, "translation-log", "", "write one JSON line per source-NAT translation that starts or ends (pod, node address and port, destination) to `path`, - for stdout; off by default")
		fs.IntVar(&s.translationLogBuffer, "translation-log-buffer", 16384, "`events` the translation log holds while its writer is behind; more are dropped and counted")
		fs.StringVar(&s.conntrackReconcile, "conntrack-reconcile", "udp", "after a config change, remove the conntrack entries of open flows whose destination's verdict changed, so they take it: `udp` (UDP, ICMP and other protocols without connection state), all (TCP and SCTP too, which resets those connections) or off")
	}
	if groups&flagsExplain != 0 {
		fs.StringVar(&s.source, "source", "", "explain for packets from this `address` (default: a pod inside masqueradeSourceCIDRs)")
	}
	if groups&flagsStrict != 0 {
		fs.BoolVar(&s.strict, "strict", false, "treat every config warning as an error: keys in another case, YAML 1.1 booleans, unknown keys, settings that change nothing")
	}
	if groups&flagsFlows != 0 {
		fs.StringVar(&s.flowPort, "port", "", "only the translation to this source `port` of the node (as an abuse report or firewall log names it)")
		fs.StringVar(&s.flowPod, "pod", "", "only translations of this pod `address`")
		fs.StringVar(&s.flowDst, "destination", "", "only translations to this `address or CIDR`")
	}
	if groups&flagsLegacy != 0 {
		fs.BoolVar(&s.legacy, "legacy", false, "delete ip-masq-agent's chain and jump from iptables-nft's nat tables instead of masqd's table; refused while masqd's chain is not in the kernel")
		fs.BoolVar(&s.force, "force", false, "with --legacy: delete them even when masqd's chain is not in the kernel, leaving the node without masquerading")
	}
	fs.StringVar(&s.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&s.logFormat, "log-format", "", "log `format`: json or console (default: console when stderr is a terminal, json otherwise)")
	cli.AddGlogFlags(fs, seenGlog)
	return fs
}

// validateNames checks --table and --masq-chain, for the commands that
// take them, before anything reaches nft or the kernel.
func (s *settings) validateNames(groups flagGroups) error {
	if groups&(flagsRuleset|flagsNames) == 0 {
		return nil
	}
	if err := nft.ValidateName("--table", s.table); err != nil {
		return err
	}
	return nft.ValidateName("--masq-chain", s.masqChain)
}

func (s *settings) configOptions() config.Options {
	return config.Options{EnableIPv6: s.enableIPv6, NoMasqAllReservedRanges: s.allReserved, Strict: s.strict}
}

func (s *settings) rulesetOptions() (nft.Options, error) {
	if s.toPorts != "" {
		return nft.Options{}, nft.ErrToPortsRefused
	}
	o := nft.Options{Table: s.table, Chain: s.masqChain, EnableIPv6: s.enableIPv6, RandomFully: s.randomFully}
	var err error
	if o.SNATv4, err = nft.ParseSNAT("--snat-address", s.snatV4, true); err != nil {
		return nft.Options{}, err
	}
	if o.SNATv6, err = nft.ParseSNAT("--snat-address-ipv6", s.snatV6, false); err != nil {
		return nft.Options{}, err
	}
	if o.SNATv6.IsValid() && !s.enableIPv6 {
		return nft.Options{}, errors.New("--snat-address-ipv6 needs --enable-ipv6: without it IPv6 is not masqueraded at all")
	}
	return o, nil
}

// kernelHint adds what to do to a permission error from the kernel. A
// file's permission error (an unreadable config) is not the kernel's.
func kernelHint(s *settings, err error) error {
	var perr *os.PathError
	if errors.As(err, &perr) || (!errors.Is(err, unix.EPERM) && !errors.Is(err, os.ErrPermission)) {
		return err
	}
	hint := "masqd needs CAP_NET_ADMIN (run as root or grant the capability)"
	if s.netns != "" {
		hint += "; entering --netns also needs CAP_SYS_ADMIN"
	}
	return fmt.Errorf("%w\n%s", err, hint)
}

const usageHead = `masqd keeps a node's egress masquerade rules in nftables; it replaces ip-masq-agent.

Usage:
`

const usageTail = `
Flags come after the command's name. -flag and --flag are the same, and a
boolean takes --flag=false. masqd help COMMAND lists the flags of one command.
`
