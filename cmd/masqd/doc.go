// Command masqd keeps a node's egress masquerade rules in nftables. It is a
// drop-in, nftables-native replacement for Kubernetes' ip-masq-agent; see
// README.md.
//
// This package owns the command line: one flag.FlagSet per command (the
// agent, render, check, explain, diff, cleanup), the logger, the exit codes, the
// signals and what the commands print. It hands the flags to internal/agent,
// which owns the whole loop (the config watch, the nftables monitor,
// ip-masq-agent's leftovers, every masqd_* metric), and serves the agent's
// metrics and health endpoints.
//
// It must not parse config files (internal/config does), compute or encode
// rules, or talk netlink itself (internal/nft does), and it keeps no flag
// values in package variables: run gets its arguments and writers, so tests
// call it like main does.
package main
