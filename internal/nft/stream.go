package nft

import (
	"net/netip"

	"github.com/google/nftables"
)

// eachElementChunk encodes intervals as start/end element pairs in lists
// that each fit one netlink attribute (google/nftables silently truncates
// longer ones), never splitting a start from its end, and calls fn with
// each list in turn. The list and its keys are reused for the next call:
// fn must encode them before it returns, as SetAddElements and
// SetDeleteElements do. At 100,000 intervals, building every list first
// took ~100 MB of allocations and ~30 MB at once; one list is ~400 KB.
func eachElementChunk(ivs []Interval, fn func([]nftables.SetElement) error) error {
	var cur []nftables.SetElement
	var keys []byte
	size := 0
	for _, iv := range ivs {
		n := elementBytes(iv)
		if size+n > maxChunkBytes && len(cur) > 0 {
			if err := fn(cur); err != nil {
				return err
			}
			cur, keys, size = cur[:0], keys[:0], 0
		}
		if keys == nil {
			keys = make([]byte, 0, maxChunkBytes)
		}
		var k []byte
		keys, k = appendKey(keys, iv.First)
		cur = append(cur, nftables.SetElement{Key: k})
		if !isMax(iv.Last) {
			keys, k = appendKey(keys, iv.Last.Next())
			cur = append(cur, nftables.SetElement{Key: k, IntervalEnd: true})
		}
		size += n
	}
	if len(cur) > 0 {
		return fn(cur)
	}
	return nil
}

// appendKey appends a's bytes to the arena keys and returns the arena and
// the key's own slice of it, capped so that appending to it cannot spill
// into the next key.
func appendKey(keys []byte, a netip.Addr) ([]byte, []byte) {
	start := len(keys)
	if a.Is4() {
		b := a.As4()
		keys = append(keys, b[:]...)
	} else {
		b := a.As16()
		keys = append(keys, b[:]...)
	}
	return keys, keys[start:len(keys):len(keys)]
}
