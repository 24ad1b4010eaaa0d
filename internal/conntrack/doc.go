// Package conntrack owns masqd's use of the kernel's connection tracking
// table: after a sync that changed verdicts, it removes the entries that
// the old rules decided and the new ones would decide differently.
//
// NAT is decided once per connection, when conntrack creates the entry, and
// an active flow keeps its entry forever. Reconcile takes the changed
// destination ranges from nft.Changes, dumps the entries of the affected
// families (the kernel filters by family; the library offers no address
// filter) and deletes exactly those whose destination lies in a changed
// range, whose protocol the Mode covers, and which the change can have made
// stale (nft.Change.Stale). Nothing else is touched: entries to unchanged
// destinations, and translations another table made for destinations masqd
// did not masquerade before.
//
// This package and internal/nft are the only ones that import netlink
// libraries. It does not log and keeps no metrics: it reports what it did
// in a Result, and the agent logs and counts.
package conntrack
