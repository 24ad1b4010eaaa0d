package nft

import (
	"fmt"
	"strings"
)

// String renders the ruleset as `nft -f` text. It is what `nft list table`
// prints for the table once applied, except that nft wraps long element
// lists over several lines and prints counter values.
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", rs.Table)
	for _, s := range rs.Sets {
		fmt.Fprintf(&b, "\tset %s {\n", s.Name)
		fmt.Fprintf(&b, "\t\ttype %s\n", s.Family.info().key.Name)
		b.WriteString("\t\tflags interval\n")
		fmt.Fprintf(&b, "\t\tcomment %q\n", s.Comment)
		if len(s.Intervals) > 0 {
			b.WriteString("\t\telements = { ")
			for i, iv := range s.Intervals {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(iv.String())
			}
			b.WriteString(" }\n")
		}
		b.WriteString("\t}\n\n")
	}
	fmt.Fprintf(&b, "\tchain %s {\n", rs.Chain)
	fmt.Fprintf(&b, "\t\ttype nat hook postrouting priority srcnat + %d; policy accept;\n", ChainPriority-100)
	for _, r := range rs.Rules {
		fmt.Fprintf(&b, "\t\t%s\n", r)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// String renders one rule as nft lists it.
func (r Rule) String() string {
	var parts []string
	m := r.Match
	switch {
	case m.Local:
		parts = append(parts, "fib daddr type local")
	case m.Prefix.IsValid():
		parts = append(parts, fmt.Sprintf("%s daddr %s", m.Family.info().payload, m.Prefix))
	case m.Set != "":
		parts = append(parts, fmt.Sprintf("%s daddr @%s", m.Family.info().payload, m.Set))
	case m.SourceNotIn != "":
		parts = append(parts, fmt.Sprintf("%s saddr != @%s", m.Family.info().payload, m.SourceNotIn))
	case m.Family != Any:
		parts = append(parts, "meta nfproto "+m.Family.String())
	}
	parts = append(parts, "counter")
	switch {
	case r.SNAT.IsValid():
		parts = append(parts, fmt.Sprintf("snat %s to %s", m.Family.info().payload, r.SNAT))
		if r.FullyRandom {
			parts = append(parts, "fully-random")
		}
	case r.Masquerade:
		parts = append(parts, "masquerade")
		if r.FullyRandom {
			parts = append(parts, "fully-random")
		}
	default:
		parts = append(parts, "return")
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}
