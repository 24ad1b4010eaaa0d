package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/masqd/masqd/internal/config"
	"github.com/masqd/masqd/internal/nft"
)

// runExplain answers for each address or prefix in args. A bad argument is
// reported on stderr and the others are still answered; the command then
// fails.
func runExplain(_ context.Context, s *settings, args []string, e env) error {
	if len(args) == 0 {
		return errors.New("explain needs one or more IP addresses or prefixes")
	}
	var src netip.Addr
	if s.source != "" {
		var err error
		if src, err = netip.ParseAddr(s.source); err != nil {
			return fmt.Errorf("explain: --source %q is not an IP address", s.source)
		}
		src = src.Unmap()
	}
	cfg, opts, rs, err := load(s)
	if err != nil {
		return err
	}
	local, err := nft.LocalRoutes(s.netns)
	if err != nil {
		fmt.Fprintf(e.stderr, "masqd: explain: cannot read the kernel's local routes (%v); answering as if no destination were local to this node\n", err)
	}
	bad := 0
	for _, a := range args {
		dst, err := parseDst(a)
		if err != nil {
			fmt.Fprintf(e.stderr, "masqd: explain: %v\n", err)
			bad++
			continue
		}
		answers := nft.Explain(cfg, opts, rs, nft.Query{Dst: dst, Src: src, Local: local})
		fmt.Fprint(e.stdout, formatAnswers(cfg, s.configPath, dst, answers))
	}
	if bad > 0 {
		return fmt.Errorf("explain: %d of %d arguments could not be read", bad, len(args))
	}
	return nil
}

// parseDst reads an address, as a /32 or /128, or a prefix without host bits.
func parseDst(a string) (netip.Prefix, error) {
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", a)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", a, p.Masked())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", a)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// formatAnswers prints one line for a destination that has one answer, and
// otherwise a heading and an indented line per sub-range.
func formatAnswers(cfg *config.Config, configPath string, dst netip.Prefix, as []nft.Answer) string {
	name := dst.String()
	if dst.IsSingleIP() {
		name = dst.Addr().String()
	}
	if len(as) == 1 {
		return name + ": " + describeAnswer(cfg, configPath, as[0]) + "\n"
	}
	masq := 0
	for _, a := range as {
		if a.Verdict.Masquerade {
			masq++
		}
	}
	var b strings.Builder
	switch masq {
	case 0:
		fmt.Fprintf(&b, "%s: not masqueraded, decided differently in %d ranges:\n", name, len(as))
	case len(as):
		fmt.Fprintf(&b, "%s: masqueraded, decided differently in %d ranges:\n", name, len(as))
	default:
		fmt.Fprintf(&b, "%s: partly masqueraded, in %d ranges:\n", name, len(as))
	}
	for _, a := range as {
		fmt.Fprintf(&b, "  %s: %s\n", a.Dst, describeAnswer(cfg, configPath, a))
	}
	return b.String()
}

// describeAnswer says whether packets are masqueraded and why, naming the
// config entry that decided and the file and line that wrote it: with
// masqueradeCIDRs, the most specific entry and the one it overrides;
// otherwise the merged interval that matched and the entries behind it.
// Other verdicts cite the deciding rule, numbered from 1 as it appears in
// the chain, and its comment.
func describeAnswer(cfg *config.Config, configPath string, a nft.Answer) string {
	v := a.Verdict
	out := "not masqueraded"
	switch {
	case v.SNAT.IsValid():
		out = "masqueraded (snat to " + v.SNAT.String() + ")"
	case v.Masquerade:
		out = "masqueraded"
	}
	switch {
	case v.Rule < 0:
		out += " (no rule matched; the chain's policy accepts)"
	case a.ByEntry && !a.Entry.Prefix.IsValid():
		out += fmt.Sprintf(": no nonMasqueradeCIDRs entry contains it (rule %d: %q)", v.Rule+1, v.Comment)
	case a.ByEntry:
		out += ": decided by " + a.Entry.String()
		if a.Overrides.Prefix.IsValid() {
			out += ", the most specific entry; it overrides " + a.Overrides.String()
		}
	case len(a.From) > 0:
		out += fmt.Sprintf(": in nonMasqueradeCIDRs %s (from %s)", v.Interval, describeFrom(cfg, configPath, a.From))
	default:
		out += fmt.Sprintf(" (rule %d: %q)", v.Rule+1, v.Comment)
	}
	fam := "IPv4"
	if a.Dst.First.Is6() {
		fam = "IPv6"
	}
	switch {
	case a.SourcesOnly && len(a.Sources) == 0:
		out += fmt.Sprintf("; masqueradeSourceCIDRs lists no %s source, so no %s traffic is masqueraded", fam, fam)
	case a.SourcesOnly:
		out += "; this holds for sources in masqueradeSourceCIDRs, others are not masqueraded (ask with --source)"
	}
	if a.Local {
		out += "; it is local to this node: the kernel's routing table has a local route for it"
	}
	return out
}

// describeFrom lists the nonMasqueradeCIDRs entries behind a set element.
func describeFrom(cfg *config.Config, configPath string, from []nft.Entry) string {
	var parts []string
	for _, e := range from {
		switch {
		case len(cfg.Files) == 0:
			parts = append(parts, e.Prefix.String())
		case e.Source.File == "":
			parts = append(parts, e.Prefix.String()+", a default")
		default:
			parts = append(parts, e.Prefix.String()+" at "+e.Source.String())
		}
	}
	if len(cfg.Files) == 0 {
		parts[len(parts)-1] += " in the defaults; no config file at " + configPath
	}
	return strings.Join(parts, ", ")
}

// parseInterleaved parses args with fs, letting flags come after the
// positional arguments too (`explain 10.0.0.1 --config f`), and returns
// those arguments. After "--" every argument is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
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
