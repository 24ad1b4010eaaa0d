package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("masqd %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

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
	once          bool
	logLevel      string
	logFormat     string
	netns         string
	metricsAddr   string
	healthAddr    string
	cleanupOnExit bool
	showVersion   bool
	legacy        bool
}

// ignoredGlogFlags are ip-masq-agent's logging flags: accepted with a
// warning, so that swapping the image does not crash-loop the DaemonSet.
var ignoredGlogFlags = []string{"v", "logtostderr", "alsologtostderr", "stderrthreshold", "log_dir", "vmodule"}

type ignored struct {
	name string
	seen *[]string
}

func (i ignored) String() string { return "" }
func (i ignored) Set(string) error {
	*i.seen = append(*i.seen, i.name)
	return nil
}
func (i ignored) IsBoolFlag() bool { return i.name == "logtostderr" || i.name == "alsologtostderr" }

func newFlagSet(name string, s *settings, seenGlog *[]string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.masqChain, "masq-chain", nft.DefaultChain, "name of the NAT chain inside masqd's table (ip-masq-agent: the iptables chain, IP-MASQ-AGENT)")
	fs.BoolVar(&s.allReserved, "nomasq-all-reserved-ranges", false, "do not masquerade any reserved IPv4 range by default (adds 100.64/10, 192.0.0/24, 192.0.2/24, 192.88.99/24, 198.18/15, 198.51.100/24, 203.0.113/24, 240/4)")
	fs.BoolVar(&s.enableIPv6, "enable-ipv6", false, "masquerade IPv6 too, and allow IPv6 nonMasqueradeCIDRs")
	fs.BoolVar(&s.randomFully, "random-fully", true, "masquerade with fully random source ports")
	fs.StringVar(&s.toPorts, "to-ports", "", "source port range(s) for masqueraded TCP and UDP, e.g. 1024-29999,32768-65535")
	fs.StringVar(&s.configPath, "config", config.DefaultPath, "config file, or a directory of config files")
	fs.StringVar(&s.table, "table", nft.DefaultTable, "name of the inet table masqd owns")
	fs.BoolVar(&s.once, "once", false, "converge once, then exit 0, or 1 with the reason")
	fs.StringVar(&s.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&s.logFormat, "log-format", "", "json or console (default: console on a terminal, json otherwise)")
	fs.StringVar(&s.netns, "netns", "", "operate on the network namespace at this path (/run/netns/NAME), for tests and demos")
	fs.StringVar(&s.metricsAddr, "metrics-bind-address", "127.0.0.1:9761", "address for /metrics; 0 disables")
	fs.StringVar(&s.healthAddr, "health-bind-address", "0.0.0.0:9762", "address for /healthz and /readyz; 0 disables")
	fs.BoolVar(&s.cleanupOnExit, "cleanup-on-exit", false, "delete masqd's table on SIGTERM/SIGINT (default: leave the rules, so pods keep egress during an update)")
	fs.BoolVar(&s.showVersion, "version", false, "print the version and exit")
	for _, n := range ignoredGlogFlags {
		fs.Var(ignored{name: n, seen: seenGlog}, n, "ignored: ip-masq-agent's glog flag (masqd uses --log-level)")
	}
	return fs
}

func (s *settings) configOptions() config.Options {
	return config.Options{EnableIPv6: s.enableIPv6, NoMasqAllReservedRanges: s.allReserved}
}

func (s *settings) rulesetOptions() (nft.Options, error) {
	ports, err := nft.ParsePortRanges(s.toPorts)
	if err != nil {
		return nft.Options{}, fmt.Errorf("--to-ports: %w", err)
	}
	if len(ports) > 0 {
		// The end-to-end test showed the kernel ignoring the range.
		return nft.Options{}, errors.New("--to-ports is not supported yet: google/nftables v0.3.0 drops the " +
			"masquerade flags whenever it encodes a port range, so the kernel would ignore the range; " +
			"remove the flag (masqd then masquerades with fully random ports)")
	}
	return nft.Options{Table: s.table, Chain: s.masqChain, EnableIPv6: s.enableIPv6, RandomFully: s.randomFully, ToPorts: ports}, nil
}

func newLogger(s *settings, stderr io.Writer) (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.Set(s.logLevel); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	format := s.logFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok {
			if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
				format = "console"
			}
		}
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	case "console":
		cfg := zap.NewDevelopmentEncoderConfig()
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, fmt.Errorf("--log-format: %q is neither json nor console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), level)), nil
}

// kernelHint turns a permission error into what to do about it.
func kernelHint(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w\nmasqd needs CAP_NET_ADMIN: run it as root or grant the capability", err)
	}
	return err
}

const usage = `masqd keeps a node's egress masquerade rules in nftables (a drop-in for ip-masq-agent).

Usage:
  masqd [flags]                 run the agent: watch the config, keep the table in sync
  masqd --once [flags]          converge once and exit
  masqd render [flags]          print the ruleset as nft -f text
  masqd check [flags]           validate the config; exit 1 listing every problem
  masqd explain [flags] IP...   say whether each address is masqueraded, and why
  masqd cleanup [--table T]     delete masqd's table (and nothing else)
  masqd cleanup --legacy        delete ip-masq-agent's iptables-nft chain and jump
  masqd --version

Flags:
`

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usage)
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "ignored:") {
			return
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s\n\t%s%s\n", f.Name, f.Usage, def)
	})
}
