// Command bench measures masqd against the kernel's own loader (nft -f) and
// against what ip-masq-agent does (iptables-restore of one RETURN rule per
// CIDR), and writes docs/benchmarks.md and an SVG chart of apply time.
//
// It owns the harness only: it drives the real bin/masqd binary, nft and
// iptables-*-restore as processes and reads masqd's JSON log lines. It is a
// module of its own so that nothing it needs enters the agent's dependency
// graph, and it imports nothing of masqd.
//
// It must run as root and must never touch the machine's own network
// namespace: every command that changes the kernel runs inside a namespace
// the harness created (named masqd-bench-PID-N) and deleted again on exit,
// on failure and on SIGINT/SIGTERM. Commands enter a namespace by being
// forked from an OS thread that setns'd into it (netns.go), or by masqd's
// own --netns flag; a thread is unlocked only after it has moved back.
// Every loop is bounded in count and in time.
package main
