// Package watch turns config-file events, a resync ticker and (fed from
// outside) kernel events into wake-ups for the agent loop.
//
// It owns:
//   - Trigger, the one coalescing wake-up of the loop: a channel of
//     capacity 1 plus a bitmask of the pending Reasons. Fire never blocks,
//     and any number of fires between two receives make one wake-up.
//   - Files, which watches the config path with inotify and fires on every
//     change that may alter what reading the path returns. It watches
//     directories and lets the loop re-read by path, because kubelet swaps
//     a ConfigMap's `..data` symlink and editors rename over files. It fires
//     once the path has been quiet briefly (Quiet after a write in place,
//     QuietReplace after renames and ConfigMap swaps, at most MaxDelay after
//     a burst's first event), so a truncate and its write are read together,
//     and holds back a file emptied in place until its content comes or a
//     resync. When inotify is unavailable or loses events, Files says so
//     through Degraded and the ticker carries on alone.
//   - Ticker, the resync interval, on an injected Clock, so tests and the
//     agent's tests drive time with watchtest.FakeClock instead of sleeping.
//
// It must not know about nftables or about the config's format: it never
// parses what it watches, and whoever receives a wake-up re-reads
// everything. Known gaps, which the resync interval covers only when
// Degraded: a directory above the watched one being renamed, a symlink in
// the middle of a chain being re-pointed, and a dangling symlink whose
// target's directory does not exist either.
package watch
