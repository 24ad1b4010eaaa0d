// Package nft owns masqd's nftables table: what it should hold and making the
// kernel hold it.
//
// Build turns a validated config into a Ruleset, a plain value with no I/O:
// String renders it as `nft list` prints it (golden tests), Script as an
// `nft -f` script that can be loaded again and again (`masqd render`),
// Trace answers which rule decides a packet (tracer tests), and Explain
// answers for an address or a whole prefix which rule and config entry
// decide, split into the sub-ranges that differ (`masqd explain`).
// ExplainText, Diff.WriteText and CheckText are the text forms of those
// answers, as String is the Ruleset's, so the CLI only prints them.
//
// Conn is the only code in masqd that talks to the kernel's nftables, and
// this is the only package that imports google/nftables or netlink. Conn.Sync
// sends one netlink batch that turns whatever the table holds into the
// Ruleset: element deltas and rule rewrites in place, a whole-table replace
// only when the schema differs, nothing when the kernel already matches.
// Conn.Diff finds the same differences and reports them, rule by rule and
// interval by interval, without sending anything (`masqd diff`).
// NodeAddrs and LocalRoutes ask rtnetlink for the node's addresses and the
// destinations its routing tables call local (what `fib daddr type local`
// matches).
// README.md in this directory explains the table's layout and the kernel and
// library facts behind these choices.
//
// This package does not read config files, log, or keep time.
package nft
