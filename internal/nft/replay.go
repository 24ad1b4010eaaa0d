package nft

import (
	"net/netip"
	"slices"
)

// maxReplay is the most elements the monitor keeps of one transaction that
// touched masqd's table. A hand-made change is a few elements; beyond this
// a dump or refill costs no more than replaying, and memory stays bounded.
const maxReplay = 4096

// txDelta is what one transaction did to masqd's table, as the monitor
// read it: the elements it added to and deleted from each set, in the
// kernel's terms (starts and ends), or opaque when it did anything else
// (a rule, a set, the table) or more than maxReplay elements.
type txDelta struct {
	gen    uint32
	opaque bool
	n      int
	sets   map[string]*setDelta
}

type setDelta struct {
	add, del []element
}

// addElements records a NEWSETELEM (del false) or DELSETELEM event of set.
func (d *txDelta) addElements(set string, msg []byte, del bool) {
	if d.opaque {
		return
	}
	if d.sets == nil {
		d.sets = map[string]*setDelta{}
	}
	sd := d.sets[set]
	if sd == nil {
		sd = &setDelta{}
		d.sets[set] = sd
	}
	var err error
	before := len(sd.add) + len(sd.del)
	if del {
		sd.del, err = appendElements(sd.del, msg)
	} else {
		sd.add, err = appendElements(sd.add, msg)
	}
	d.n += len(sd.add) + len(sd.del) - before
	if err != nil || d.n > maxReplay {
		d.markOpaque()
	}
}

func (d *txDelta) markOpaque() {
	d.opaque, d.sets, d.n = true, nil, 0
}

// record keeps the delta of a transaction that touched the table, for
// replay on the cached state.
func (c *Conn) record(d *txDelta) {
	c.touch(d.gen)
	c.deltaMu.Lock()
	defer c.deltaMu.Unlock()
	c.deltas = append(c.deltas, d)
}

// pruneDeltas drops what the cache no longer needs: transactions up to and
// including gen, or all of them when gen is zero (the cache was dropped).
func (c *Conn) pruneDeltas(gen uint32) {
	c.deltaMu.Lock()
	defer c.deltaMu.Unlock()
	c.deltas = slices.DeleteFunc(c.deltas, func(d *txDelta) bool { return gen == 0 || d.gen <= gen })
}

// replay returns the kernel's state at generation gen as the cached state
// with the element changes of the foreign transactions since masqd's last
// commit applied, or nil when the monitor cannot vouch for it: it is not
// running or has not read up to gen, a transaction did more than add and
// delete elements, or events were lost. A foreign element is then repaired
// without reading the set back.
func (c *Conn) replay(gen uint32, want *Ruleset) *observed {
	if c.last == nil || c.last.Table != want.Table || !c.monitoring.Load() || c.seenGen.Load() < gen || c.lastTouch.Load() > gen {
		return nil
	}
	c.deltaMu.Lock()
	var ds []*txDelta
	for _, d := range c.deltas {
		if d.gen > c.lastGen && d.gen <= gen {
			ds = append(ds, d)
		}
	}
	c.deltaMu.Unlock()
	for _, d := range ds {
		if d.opaque {
			return nil
		}
	}
	o := compareCached(c.last, want)
	for _, d := range ds {
		for name, sd := range d.sets {
			have := o.sets[name]
			if have == nil {
				// A set the cache does not know: a foreign one.
				return nil
			}
			o.sets[name] = applyDelta(have.intervals, sd)
		}
	}
	return o
}

// applyDelta applies element adds and deletes to intervals and parses the
// result as if it had been dumped, so a dangling end or a half-deleted
// interval marks the set dirty just as a dump would. Only the window of
// intervals the delta touches is taken apart: the set may be large, the
// delta is small.
func applyDelta(ivs []Interval, sd *setDelta) *observedSet {
	lo, hi := len(ivs), 0
	for _, e := range slices.Concat(sd.add, sd.del) {
		if e.bad {
			return &observedSet{dirty: true}
		}
		// The first interval that ends at or after e, or whose end
		// element (Last+1) is e.
		j, _ := slices.BinarySearchFunc(ivs, e.addr, func(iv Interval, a netip.Addr) int {
			if iv.Last.Compare(a) >= 0 || iv.Last.Next() == a {
				return 1
			}
			return -1
		})
		lo = min(lo, j)
		if j < len(ivs) && ivs[j].First.Compare(e.addr) <= 0 {
			j++
		}
		hi = max(hi, j)
	}
	if lo > hi {
		return &observedSet{intervals: ivs}
	}
	gone := make(map[element]bool, len(sd.del))
	for _, e := range sd.del {
		gone[e] = true
	}
	elems := make([]element, 0, 2*(hi-lo)+len(sd.add))
	for _, iv := range ivs[lo:hi] {
		for _, e := range []element{{addr: iv.First}, {addr: iv.Last.Next(), end: true}} {
			if e.addr.IsValid() && !gone[e] {
				elems = append(elems, e)
			}
		}
	}
	elems = append(elems, sd.add...)
	slices.SortFunc(elems, elementOrder)
	win := parseSorted(elems)
	if n := len(win.intervals); hi < len(ivs) && n > 0 && win.intervals[n-1].Last == addrFamily(win.intervals[n-1].First).info().max {
		// An interval left open in the window runs into the next
		// interval's start: two starts in a row.
		win.dirty = true
	}
	win.intervals = slices.Concat(ivs[:lo], win.intervals, ivs[hi:])
	return win
}
