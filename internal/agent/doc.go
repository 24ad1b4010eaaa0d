// Package agent is masqd's control loop. It owns the whole loop and the
// state that outlives one sync: the config watch and the nftables monitor it
// starts and stops, the last good config, what was last applied, readiness,
// ip-masq-agent's leftover rules, and every masqd_* metric.
//
// Every wake-up (start, a config file event, the resync tick, a kernel event,
// a retry after a failure) lands on one coalescing watch.Trigger; each pass
// re-reads the config when the reason calls for it and syncs the ruleset
// built from the last good config. A config that fails validation never
// reaches the kernel: the previous rules stay, and the agent reports not
// ready until the file is fixed. The monitor starts after the first
// successful sync. On the start and every resync, the pass also looks for
// ip-masq-agent's chains and, when asked to, removes them, but only while
// the agent is ready.
//
// The agent reaches the kernel only through the Kernel interface, which
// internal/nft's Conn implements and tests fake, and time only through the
// injected watch.Clock. It must not import netlink libraries or read flags.
package agent
