package nft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// LegacyChains are the chain names ip-masq-agent has used: IP-MASQ-AGENT (its
// --masq-chain default) and IP-MASQ (older releases and some distributions).
var LegacyChains = []string{"IP-MASQ-AGENT", "IP-MASQ"}

// Legacy is one set of ip-masq-agent leftovers that iptables-nft wrote and
// nftables can see: a chain in an `ip nat` or `ip6 nat` table, and the
// POSTROUTING rules that jump to it.
type Legacy struct {
	Family Family
	Table  string
	Chain  string
	// Rules is the number of rules in the chain.
	Rules int
	// Jumps are the handles of the POSTROUTING rules that jump to the chain.
	Jumps []uint64
}

// FamilyName is "ip" or "ip6".
func (l Legacy) FamilyName() string { return l.Family.info().payload }

func (l Legacy) String() string {
	return fmt.Sprintf("%s %s chain %s (%s, %s from POSTROUTING)", l.FamilyName(), l.Table, l.Chain,
		plural(l.Rules, "rule"), plural(len(l.Jumps), "jump"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// IptablesCommand is what an operator would run to remove the leftovers
// with iptables instead of `masqd cleanup --legacy`: iptables-nft, which
// wrote them, since nftables can see them.
func (l Legacy) IptablesCommand() string {
	bin := l.Family.info().iptables + "-nft"
	return RemoveChainCommand(bin, l.Chain)
}

// RemoveChainCommand is a shell command that removes an iptables nat chain
// with bin (iptables-nft, iptables-legacy, ...): every POSTROUTING rule
// that jumps to it, whatever its matches and comment, then the chain. It
// can be pasted as it is.
func RemoveChainCommand(bin, chain string) string {
	return fmt.Sprintf("%[1]s -t nat -S POSTROUTING | grep -e ' -j %[2]s$' | sed 's/^-A /-D /' | xargs -r -L1 %[1]s -t nat && "+
		"%[1]s -t nat -F %[2]s && %[1]s -t nat -X %[2]s", bin, chain)
}

// FindLegacy looks for ip-masq-agent's chains (LegacyChains, plus extra
// names such as a custom --masq-chain) in the nat tables of both families.
// It reads only; iptables-legacy rules are invisible to it. It uses a socket
// of its own and is safe beside any other call.
func (c *Conn) FindLegacy(ctx context.Context, extra ...string) ([]Legacy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	names := slices.Concat(LegacyChains, extra)
	nc, err := c.newConn()
	if err != nil {
		return nil, err
	}
	var found []Legacy
	for _, f := range families {
		fam := f.info().table
		t, err := nc.ListTableOfFamily("nat", fam)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list nat table: %w", err)
		}
		chains, err := nc.ListChainsOfTableFamily(fam)
		if err != nil {
			return nil, fmt.Errorf("list chains: %w", err)
		}
		var post *nftables.Chain
		for _, ch := range chains {
			if ch.Table.Name == t.Name && ch.Name == "POSTROUTING" {
				post = ch
			}
		}
		var jumps []*nftables.Rule
		if post != nil {
			if jumps, err = nc.GetRules(t, post); err != nil {
				return nil, fmt.Errorf("list POSTROUTING rules: %w", err)
			}
		}
		for _, ch := range chains {
			if ch.Table.Name != t.Name || !slices.Contains(names, ch.Name) {
				continue
			}
			rules, err := nc.GetRules(t, ch)
			if err != nil {
				return nil, fmt.Errorf("list rules of %s: %w", ch.Name, err)
			}
			l := Legacy{Family: f, Table: t.Name, Chain: ch.Name, Rules: len(rules)}
			for _, r := range jumps {
				if jumpsTo(r, ch.Name) {
					l.Jumps = append(l.Jumps, r.Handle)
				}
			}
			found = append(found, l)
		}
	}
	return found, nil
}

// jumpsTo reports whether r is ip-masq-agent's POSTROUTING jump to chain:
// a jump to it, carrying no comment or ip-masq-agent's.
func jumpsTo(r *nftables.Rule, chain string) bool {
	jump := false
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			jump = jump || ((e.Kind == expr.VerdictJump || e.Kind == expr.VerdictGoto) && e.Chain == chain)
		case *expr.Match:
			if c, ok := e.Info.(*xt.Comment); ok && !strings.HasPrefix(string(*c), "ip-masq-agent") {
				return false
			}
		}
	}
	return jump
}

// CleanupLegacy removes the leftovers FindLegacy reports, in one batch: the
// jump rules, then the chains. Nothing else in the nat tables is touched. It
// uses a socket of its own and is safe beside any other call.
func (c *Conn) CleanupLegacy(ctx context.Context, found []Legacy) error {
	if len(found) == 0 {
		return ctx.Err()
	}
	if err := c.acquire(); err != nil {
		return err
	}
	defer c.release()
	nc, err := c.newConn()
	if err != nil {
		return err
	}
	for _, l := range found {
		t := &nftables.Table{Name: l.Table, Family: l.Family.info().table}
		for _, h := range l.Jumps {
			if err := nc.DelRule(&nftables.Rule{Table: t, Chain: &nftables.Chain{Name: "POSTROUTING", Table: t}, Handle: h}); err != nil {
				return fmt.Errorf("queue delete of the jump to %s: %w", l.Chain, err)
			}
		}
		ch := &nftables.Chain{Name: l.Chain, Table: t}
		nc.FlushChain(ch)
		nc.DelChain(ch)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("remove ip-masq-agent's chains: %w", err)
	}
	return nil
}
