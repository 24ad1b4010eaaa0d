// Package agent is masqd's control loop. It owns the state that outlives one
// sync: the last good config, what was last applied, readiness, metrics.
//
// Every wake-up (start, a config file event, the resync tick, a kernel event,
// a retry after a failure) lands on one coalescing watch.Trigger; each pass
// re-reads the config when the reason calls for it and syncs the ruleset
// built from the last good config. A config that fails validation never
// reaches the kernel: the previous rules stay, and the agent reports not
// ready until the file is fixed.
//
// The agent reaches the kernel only through the Kernel interface, which
// internal/nft's Conn implements and tests fake.
package agent
