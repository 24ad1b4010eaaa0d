// Package conntrack owns masqd's use of the kernel's connection tracking
// table: after a sync that changed verdicts, it removes the entries that
// the old rules decided and the new ones would decide differently.
//
// NAT is decided once per connection, when conntrack creates the entry, and
// an active flow keeps its entry forever. Reconcile takes the changed
// destination ranges from nft.Changes, dumps the entries of the affected
// families and deletes exactly those whose destination lies in a changed
// range, whose protocol the Mode covers, and which the change can have made
// stale (nft.Change.Stale). Nothing else is touched: entries to unchanged
// destinations, and translations another table made for destinations masqd
// did not masquerade before. The kernel filters by family, and by the
// translated bit when the change allows; it has no filter by address range.
//
// Translations lists the source-NAT translations conntrack holds (masqd
// flows), read-only. TranslationLog turns conntrack's new and destroy
// events into one JSON line per translation that starts or ends, through
// a bounded buffer whose overflow it counts.
//
// The few ctnetlink messages it needs (a dump, a delete, events) are encoded here on
// mdlayher/netlink rather than through ti-mo/conntrack: that library reads
// dumps page by page, which makes the kernel cut them into page-sized
// messages and doubled the cost of a 10,000-entry dump, and it decodes every
// attribute of every entry where Reconcile needs five. Deletes carry the
// entry's ID, so an entry replaced since the dump is left alone. Tests use
// ti-mo/conntrack to create and inspect entries.
//
// This package and internal/nft are the only ones that import netlink
// libraries. It does not log and keeps no metrics: it reports what it did
// in a Result, and the agent logs and counts.
package conntrack
