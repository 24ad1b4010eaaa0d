// Command masqd keeps a node's egress masquerade rules in nftables. It is a
// drop-in, nftables-native replacement for Kubernetes' ip-masq-agent; see
// README.md.
//
// This package owns masqd's commands (the agent, render, check, explain,
// diff, cleanup, flows): their flags, what each asks the internal packages,
// the signals, and the metrics and health endpoints it serves. It hands the
// flags to internal/agent, which owns the whole loop (the config watch, the
// nftables monitor, the translation log, ip-masq-agent's leftovers, every
// masqd_* metric, the exit). The text each command prints comes from the
// package that owns the answer (nft.ExplainText, Diff.WriteText,
// nft.CheckText, conntrack.TranslationsText), and the command grammar,
// help and logger from internal/cli.
//
// It must not parse config files (internal/config does), compute or encode
// rules, or talk netlink itself (internal/nft does), and it keeps no flag
// values in package variables: run gets its arguments and writers, so tests
// call it like main does.
package main
