// Package e2e tests the real masqd binary with real connections: a pod
// namespace connects through a node namespace running masqd to addresses in
// a world namespace (see package testbed), and each test checks the source
// address the receiver saw against the config masqd was given.
//
// The tests use MASQD_BIN, or build cmd/masqd once per run. They need root,
// ip and nft, and skip visibly otherwise. They must never touch the
// namespace they run in: every kernel change happens inside a bed.
package e2e
