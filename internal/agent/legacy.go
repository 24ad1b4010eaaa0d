package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/masqd/masqd/internal/nft"
)

// legacyState is what the loop remembers about ip-masq-agent's rules.
type legacyState struct {
	// due: look for them in this pass (start, a resync, or a removal
	// waiting for masqd to be ready).
	due bool
	// told: their presence was logged, and they have not gone since.
	told bool
}

// LegacyExtra is what to look for besides nft.LegacyChains: a custom
// --masq-chain, which ip-masq-agent gave its own chain as a name.
func LegacyExtra(o nft.Options) []string {
	if o.Chain == "" || o.Chain == nft.DefaultChain || slices.Contains(nft.LegacyChains, o.Chain) {
		return nil
	}
	return []string{o.Chain}
}

// checkLegacy looks for ip-masq-agent's chains in iptables-nft's nat
// tables. Its jump from POSTROUTING runs at srcnat priority, before masqd's
// chain, and its MASQUERADE wins, so the chains are reported (the log once,
// masqd_legacy_ip_masq_agent_chains always) and, with RemoveLegacy,
// removed: only while masqd is ready, so the node is never left without
// masquerading. A removal that has to wait is tried again on every pass
// until masqd is ready.
func (a *Agent) checkLegacy(ctx context.Context) {
	a.legacy.due = false
	found, err := a.k.FindLegacy(ctx, LegacyExtra(a.opts.Ruleset)...)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("could not look for ip-masq-agent's rules; looking again on the next resync", zap.Error(err))
		}
		return
	}
	a.m.legacyChains.Set(float64(len(found)))
	switch ready, why := a.Ready(); {
	case len(found) == 0:
		a.legacy.told = false
	case !a.opts.RemoveLegacy:
		if !a.legacy.told {
			for _, l := range found {
				a.log.Warn("ip-masq-agent's rules are still installed and run before masqd's; remove them with masqd cleanup --legacy, or run masqd with --remove-legacy-rules",
					zap.Stringer("leftover", l), zap.String("iptables_equivalent", l.IptablesCommand()))
			}
			a.legacy.told = true
		}
	case !ready:
		a.legacy.due = true
		if !a.legacy.told {
			a.log.Warn("ip-masq-agent's rules stay until masqd is ready", zap.String("not_ready", why), zap.Int("chains", len(found)))
			a.legacy.told = true
		}
	default:
		a.removeLegacy(ctx, found)
	}
}

func (a *Agent) removeLegacy(ctx context.Context, found []nft.Legacy) {
	if err := a.k.CleanupLegacy(ctx, found); err != nil {
		if ctx.Err() == nil {
			a.log.Error("could not remove ip-masq-agent's rules; trying again on the next resync", zap.Error(err))
		}
		return
	}
	a.m.legacyChains.Set(0)
	a.m.legacyRemoved.Add(float64(len(found)))
	for _, l := range found {
		a.log.Info("removed ip-masq-agent's rules now that masqd's table is in sync (--remove-legacy-rules)", zap.Stringer("removed", l))
	}
	a.legacy.told = false
}

// NoLegacyText is what `masqd cleanup --legacy` prints when CleanupLegacy
// found no chains: iptables-legacy's rules are invisible to nftables, and
// how to look for them and remove them.
func NoLegacyText(opts nft.Options) string {
	chain := nft.LegacyChains[0]
	if extra := LegacyExtra(opts); len(extra) > 0 {
		chain = extra[0]
	}
	return "no ip-masq-agent chains in iptables-nft's nat tables.\n" +
		"Rules written by iptables-legacy are invisible to nftables; check with: iptables-legacy -t nat -S | grep -i masq\n" +
		"and remove them with: " + nft.RemoveChainCommand("iptables-legacy", chain) + "\n"
}

// NotInKernelError is why CleanupLegacy refuses: masqd's chain is not in
// the kernel, so removing ip-masq-agent's rules would leave the node
// without masquerading.
type NotInKernelError struct{ Table, Chain string }

func (e *NotInKernelError) Error() string {
	return fmt.Sprintf("masqd's chain %s of table inet %s is not in the kernel", e.Chain, e.Table)
}

// CleanupLegacy removes ip-masq-agent's chains and their jumps, as `masqd
// cleanup --legacy` does, and returns what it removed. Unless force, it
// refuses with a *NotInKernelError, removing nothing, when any were found while
// masqd's chain (opts' table and chain, with rules) is not in the kernel.
func CleanupLegacy(ctx context.Context, k Kernel, opts nft.Options, force bool) ([]nft.Legacy, error) {
	found, err := k.FindLegacy(ctx, LegacyExtra(opts)...)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	if !force {
		st, err := k.Counters(ctx, opts.Table, opts.Chain)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
		if err != nil || len(st.Rules) == 0 {
			return nil, &NotInKernelError{Table: opts.Table, Chain: opts.Chain}
		}
	}
	if err := k.CleanupLegacy(ctx, found); err != nil {
		return nil, err
	}
	return found, nil
}
