package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseCIDR checks one nonMasqueradeCIDRs entry. It returns the masked prefix,
// or a message and a fix.
func parseCIDR(s string, opts Options) (p netip.Prefix, msg, fix string) {
	const example = `write ADDRESS/LENGTH, such as "10.0.0.0/8"`
	if s == "" {
		return p, "empty CIDR", "remove the entry"
	}
	if t := strings.TrimSpace(s); t != s {
		return p, fmt.Sprintf("%q has spaces around it", shown(s)), fmt.Sprintf("write %q", shown(t))
	}
	if i := strings.IndexByte(s, '%'); i >= 0 {
		bare := s[:i]
		if j := strings.IndexByte(s[i:], '/'); j >= 0 {
			bare += s[i+j:]
		}
		if bp, err := netip.ParsePrefix(bare); err == nil {
			bare = bp.Masked().String()
		}
		return p, shown(s) + " has a zone; a CIDR cannot name an interface", "write " + shown(bare)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Sprintf("%q is not a CIDR", shown(s)), example
		}
		a = a.Unmap()
		return p, s + " is an address, not a CIDR", fmt.Sprintf("write %s/%d for this one address", a, a.BitLen())
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Sprintf("%q is not a CIDR: %s", shown(s), shown(parseReason(err))), example
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		v4 := netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		return netip.Prefix{}, s + " is an IPv4-mapped IPv6 prefix, which never matches IPv4 traffic", "write " + v4.String()
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, s + " has host bits set", "did you mean " + m.String() + "?"
	}
	if p.Addr().Is6() && !opts.EnableIPv6 {
		return netip.Prefix{}, s + " is an IPv6 CIDR but IPv6 is not enabled", "start masqd with --enable-ipv6, or remove it"
	}
	return p, "", ""
}

// parseReason trims netip's error to its reason: netip repeats the input.
func parseReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 {
		return s[i+3:]
	}
	return s
}

// unknownKeyFix suggests the known key closest to k: one that differs only
// in case, '_' or '-', or within three edits.
func unknownKeyFix(k string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	best, bestDist := "", 4
	lower := strings.ToLower(k)
	for _, known := range knownKeys {
		if norm(k) == norm(known) {
			best, bestDist = known, 0
			break
		}
		if abs(len(lower)-len(known)) >= bestDist {
			continue // at least that many edits: no need to count them
		}
		if d := editDistance(lower, strings.ToLower(known)); d < bestDist {
			best, bestDist = known, d
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf("did you mean %q?", best)
	case k == "apiVersion" || k == "kind" || k == "data" || k == "metadata":
		return "this is a Kubernetes manifest: masqd reads the ConfigMap's config key as mounted into the pod, " +
			"not the manifest; give it the mounted file, or the text under data.config"
	}
	return "remove it; the keys are " + strings.Join(knownKeys, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
