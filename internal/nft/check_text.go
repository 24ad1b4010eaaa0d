package nft

import (
	"fmt"
	"strings"

	"github.com/masqd/masqd/internal/config"
)

// CheckText is the text form of a valid config's check, as `masqd check`
// prints it: each warning, their count, a summary of cfg with the
// intervals of rs (built from cfg and opts) after merging, and the
// ConfigHash a node that applies it reports.
func CheckText(cfg *config.Config, opts Options, rs *Ruleset) string {
	var b strings.Builder
	ws := cfg.Warnings()
	for _, w := range ws {
		b.WriteString("warning: " + w.String() + "\n")
	}
	switch len(ws) {
	case 0:
	case 1:
		b.WriteString("1 warning; the config is valid and applies as described\n")
	default:
		fmt.Fprintf(&b, "%d warnings; the config is valid and applies as described\n", len(ws))
	}
	fmt.Fprintf(&b, "ok: %s; %d IPv4 and %d IPv6 intervals after merging\n",
		cfg.Summary(), len(rs.Set(SetV4).Intervals), len(rs.Set(SetV6).Intervals))
	h := ConfigHash(cfg, opts)
	fmt.Fprintf(&b, "config hash: %s (a node that applies this reports masqd_config_info{hash=%q})\n", h, h)
	return b.String()
}
