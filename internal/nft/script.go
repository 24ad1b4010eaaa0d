package nft

import "strings"

// Script renders the ruleset as an `nft -f` script that can be loaded any
// number of times, over no table or over one masqd synced: it declares the
// table (a no-op when it exists), flushes it, which empties the chain and
// the sets but keeps them, and declares the contents. nft sends the file as
// one transaction, so packets see the old table or the new one, and the
// sets and the chain are never re-created. A table whose schema differs
// (another chain priority, another set type) makes nft reject the whole
// file and leaves the table as it was; objects that are not masqd's stay,
// emptied.
func (rs *Ruleset) Script() string {
	var b strings.Builder
	b.WriteString("table inet " + rs.Table + "\n")
	b.WriteString("flush table inet " + rs.Table + "\n")
	b.WriteString(rs.String())
	return b.String()
}
