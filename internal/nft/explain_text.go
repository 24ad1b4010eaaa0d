package nft

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/masqd/masqd/internal/config"
)

// ParseDst reads what `masqd explain` is asked about: an address, as a /32
// or /128, or a prefix without host bits. IPv4-mapped IPv6 comes back as
// IPv4, as Query.Dst wants it.
func ParseDst(a string) (netip.Prefix, error) {
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

// ExplainText is the text form of Explain's answers for dst, as `masqd
// explain` prints it: one line when dst has one answer, and otherwise a
// heading and an indented line per sub-range. configPath names the config
// when cfg was read from no file.
func ExplainText(cfg *config.Config, configPath string, dst netip.Prefix, as []Answer) string {
	name := dst.String()
	if dst.IsSingleIP() {
		name = dst.Addr().String()
	}
	if len(as) == 1 {
		return name + ": " + as[0].Text(cfg, configPath) + "\n"
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
		fmt.Fprintf(&b, "  %s: %s\n", a.Dst, a.Text(cfg, configPath))
	}
	return b.String()
}

// Text says whether packets are masqueraded and why, naming the config
// entry that decided and the file and line that wrote it: with
// masqueradeCIDRs, the most specific entry and the one it overrides;
// otherwise the merged interval that matched and the entries behind it.
// Other verdicts cite the deciding rule, numbered from 1 as it appears in
// the chain, and its comment.
func (a Answer) Text(cfg *config.Config, configPath string) string {
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
		out += fmt.Sprintf(": in nonMasqueradeCIDRs %s (from %s)", v.Interval, fromText(cfg, configPath, a.From))
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

// fromText lists the nonMasqueradeCIDRs entries behind a set element.
func fromText(cfg *config.Config, configPath string, from []Entry) string {
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
