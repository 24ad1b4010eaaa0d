// Package watch turns config-file events, a resync ticker and (fed from
// outside) kernel events into wake-ups for the agent loop. It knows nothing
// about nftables or config parsing.
package watch
