package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// socketBuffer is the size of the netlink socket buffers. The kernel's
// default (~208 KB) fails batches of a few thousand elements with EMSGSIZE
// and acks with ENOBUFS (docs/ARCHITECTURE.md).
const socketBuffer = 32 << 20

// Conn applies rulesets to the kernel of one network namespace. It remembers
// what it last committed and the ruleset generation id that commit made, so a
// sync finding the generation unchanged needs no dump.
//
// Concurrency: every method may be called from any goroutine at the same
// time as any other. Sync, Delete and Forget share the memory of the last
// commit and take turns on one mutex; Counters, FindLegacy and CleanupLegacy
// dial sockets of their own per call and share nothing; Monitor runs beside
// them and publishes what it read through atomics. Close waits for the calls
// in flight; calls after it fail with ErrClosed. No call touches
// google/nftables' package-global set-ID counter (see addSet).
type Conn struct {
	ns *os.File // nil: the caller's namespace; kept open for the dials.
	// open guards ns: a call holds it shared while it dials into the
	// namespace, Close exclusively, so a closed (or reused) descriptor is
	// never handed to setns.
	open   sync.RWMutex
	closed bool

	// mu serialises the users of last and lastGen: Sync, Delete, Forget.
	mu      sync.Mutex
	last    *Ruleset // what the kernel holds, if lastGen is still current
	lastGen uint32

	// mon is the monitor's socket while it runs, for quiet.
	monMu sync.Mutex
	mon   *netlink.Conn

	// gen is a lasting socket for the generation id: dialing into a
	// namespace costs more than the question.
	genMu sync.Mutex
	gen   *netlink.Conn

	// Kept by Monitor: whether it runs, the newest generation whose events
	// it has read, and the newest generation that touched the table.
	monitoring atomic.Bool
	seenGen    atomic.Uint32
	lastTouch  atomic.Uint32
	// deltas are the element changes of the transactions that touched the
	// table, kept by Monitor until a commit or Forget makes them moot.
	deltaMu sync.Mutex
	deltas  []*txDelta

	// commit sends a queued batch: Flush, or a fault-injecting wrapper in
	// tests.
	commit func(*nftables.Conn) error
	// seen, when set (by tests, before Monitor starts), is called from
	// Monitor with each generation it has read up to: the current one once
	// it listens, then every transaction's.
	seen func(gen uint32)
}

// Open returns a Conn for the network namespace at nsPath (such as
// /run/netns/NAME), or for the caller's namespace when nsPath is empty.
func Open(nsPath string) (*Conn, error) {
	c := &Conn{commit: (*nftables.Conn).Flush}
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("open network namespace: %w", err)
		}
		c.ns = f
	}
	if _, err := c.genID(); err != nil {
		c.Close()
		return nil, fmt.Errorf("talk to nftables over netlink: %w", err)
	}
	return c, nil
}

// ErrClosed is returned by calls on a closed Conn.
var ErrClosed = errors.New("nft: connection closed")

// acquire holds the Conn open for one call; the call ends with release.
func (c *Conn) acquire() error {
	c.open.RLock()
	if c.closed {
		c.open.RUnlock()
		return ErrClosed
	}
	return nil
}

func (c *Conn) release() { c.open.RUnlock() }

// Close releases the namespace handle and the lasting socket once the calls
// in flight have returned. A running Monitor does not hold it up; cancel its
// context to stop it.
func (c *Conn) Close() error {
	c.open.Lock()
	defer c.open.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.genMu.Lock()
	if c.gen != nil {
		c.gen.Close()
		c.gen = nil
	}
	c.genMu.Unlock()
	if c.ns == nil {
		return nil
	}
	return c.ns.Close()
}

// Forget drops what the Conn believes the kernel holds, so that the next
// Sync reads the table back. It waits for a Sync in progress.
func (c *Conn) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget()
}

// forget is Forget for a caller holding mu.
func (c *Conn) forget() {
	c.last, c.lastGen = nil, 0
	c.pruneDeltas(0)
}

func (c *Conn) nsFd() int {
	if c.ns == nil {
		return 0
	}
	return int(c.ns.Fd())
}

// newConn returns a fresh google/nftables connection: errors stick to one,
// and a lasting socket can hold a stale ack.
func (c *Conn) newConn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(nl *netlink.Conn) error {
		if err := nl.SetReadBuffer(socketBuffer); err != nil {
			return err
		}
		return nl.SetWriteBuffer(socketBuffer)
	})}
	if c.ns != nil {
		opts = append(opts, nftables.WithNetNSFd(c.nsFd()))
	}
	return nftables.New(opts...)
}

// genID returns the ruleset generation id, which every nftables commit in
// the namespace increments. google/nftables has no call for it. Safe for
// concurrent use: the lasting socket is used under genMu.
func (c *Conn) genID() (uint32, error) {
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.gen == nil {
		nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: c.nsFd()})
		if err != nil {
			return 0, err
		}
		c.gen = nl
	}
	msgs, err := c.gen.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		// Start afresh next time: the socket may hold a stale answer.
		c.gen.Close()
		c.gen = nil
		return 0, fmt.Errorf("get generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, err
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("get generation: no id in the kernel's answer")
}

// Result says what a Sync did.
type Result struct {
	// Op is what the batch did to the table.
	Op Op
	// Reason explains a replace: what differed in the table's schema.
	Reason string
	// Cached is true when the kernel state was known from masqd's own last
	// commit (the generation id had not moved), or from it and the element
	// changes the monitor read since, and no dump was needed.
	Cached bool
	// Rules is true when the chain's rules were rewritten.
	Rules bool
	// Sets lists per set the intervals added and removed.
	Sets []SetChange
	// Generation is the ruleset generation id after the sync.
	Generation uint32
}

// SetChange is what a sync did to one set.
type SetChange struct {
	Name           string
	Added, Removed int
	// Refilled is true when the set was flushed and filled anew because
	// its elements formed no clean intervals.
	Refilled bool
	// Created and Deleted say that the set itself was added or removed:
	// an optional set whose setting changed, or a foreign one.
	Created, Deleted bool
}

// Op is the kind of change a sync made.
type Op int

// Ops.
const (
	OpNone    Op = iota // the kernel already matched; nothing was sent
	OpCreate            // the table did not exist
	OpReplace           // the table's schema differed; it was replaced whole
	OpUpdate            // rules or elements were changed in place
)

func (o Op) String() string {
	return [...]string{"none", "create", "replace", "update"}[o]
}

// Changed reports whether the sync sent a batch.
func (r Result) Changed() bool { return r.Op != OpNone }

// Sync makes the kernel's table equal to want in one netlink batch. It never
// deletes the table first: packets see the old ruleset or the new one.
// Concurrent Syncs (and Delete, Forget) take turns.
func (c *Conn) Sync(ctx context.Context, want *Ruleset) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := c.acquire(); err != nil {
		return Result{}, err
	}
	defer c.release()
	c.mu.Lock()
	defer c.mu.Unlock()
	gen, err := c.genID()
	if err != nil {
		return Result{}, err
	}
	var res Result
	var obs *observed
	if want == c.last && c.cacheValid(gen, want) {
		// The very ruleset of masqd's last commit, still in place: the
		// steady state costs one generation-id round trip at any size.
		return Result{Op: OpNone, Cached: true, Generation: gen}, nil
	}
	if c.cacheValid(gen, want) {
		obs = compareCached(c.last, want)
		res.Cached = true
	} else if obs = c.replay(gen, want); obs != nil {
		res.Cached = true
	} else {
		// Touches from here on are not in the dump.
		c.lastTouch.Store(0)
		c.pruneDeltas(0)
		nc, err := c.newConn()
		if err != nil {
			return Result{}, err
		}
		if obs, err = read(nc, c.nsFd(), want); err != nil {
			return Result{}, err
		}
	}
	nc, err := c.newConn()
	if err != nil {
		return Result{}, err
	}
	if err := plan(nc, obs, want, &res); err != nil {
		return Result{}, err
	}
	if res.Op == OpNone {
		c.last, c.lastGen = want, gen
		c.pruneDeltas(gen)
		res.Generation = gen
		return res, nil
	}
	resume := c.quiet(res)
	err = c.commit(nc)
	resume()
	if err != nil {
		// The batch may or may not have been committed (an ENOBUFS can
		// follow a commit): read the table back next time.
		c.forget()
		return res, fmt.Errorf("commit %s of table %s: %w", res.Op, want.Table, err)
	}
	after, err := c.genID()
	if err != nil {
		c.forget()
		return res, nil
	}
	res.Generation = after
	if after == gen+1 {
		c.last, c.lastGen = want, after
		c.pruneDeltas(after)
	} else {
		// Someone else committed too; trust nothing cached.
		c.forget()
	}
	return res, nil
}

// cacheValid reports whether the kernel still holds c.last: nothing has
// committed since masqd's own last commit, or the monitor has read every
// transaction up to gen and none after that commit touched the table. The
// caller holds mu.
func (c *Conn) cacheValid(gen uint32, want *Ruleset) bool {
	if c.last == nil || c.last.Table != want.Table {
		return false
	}
	if gen == c.lastGen {
		return true
	}
	return c.monitoring.Load() && c.seenGen.Load() >= gen && c.lastTouch.Load() <= c.lastGen
}

// plan queues on nc the batch that turns obs into want.
func plan(nc *nftables.Conn, obs *observed, want *Ruleset, res *Result) error {
	t := tableObj(want.Table)
	switch {
	case !obs.exists:
		res.Op = OpCreate
		return create(nc, t, want, res)
	case obs.schema != "":
		res.Op, res.Reason = OpReplace, obs.schema
		nc.AddTable(t)
		nc.DelTable(t)
		return create(nc, t, want, res)
	}
	// Sets the kernel lacks go in before the rules that use them, sets the
	// ruleset lacks go after the rules that used them: no packet sees a
	// missing set, and the table is never re-created.
	ids := map[string]uint32{}
	for _, s := range want.Sets {
		if obs.sets[s.Name] != nil {
			continue
		}
		res.Op = OpUpdate
		if err := addSet(nc, t, s, ids, res); err != nil {
			return err
		}
	}
	if !obs.rules {
		res.Op, res.Rules = OpUpdate, true
		ch := chainObj(t, want.Chain)
		nc.FlushChain(ch)
		addRules(nc, t, ch, want, ids)
	}
	for _, name := range obs.extra {
		res.Op = OpUpdate
		nc.DelSet(&nftables.Set{Table: t, Name: name})
		res.Sets = append(res.Sets, SetChange{Name: name, Deleted: true})
	}
	for _, s := range want.Sets {
		so := setObj(t, s)
		have := obs.sets[s.Name]
		if have == nil {
			continue
		}
		if have.dirty {
			res.Op = OpUpdate
			res.Sets = append(res.Sets, SetChange{Name: s.Name, Added: len(s.Intervals), Refilled: true})
			nc.FlushSet(so)
			if err := addElements(nc, so, s.Intervals); err != nil {
				return err
			}
			continue
		}
		del, add := intervalDelta(have.intervals, s.Intervals)
		if len(del) == 0 && len(add) == 0 {
			continue
		}
		res.Op = OpUpdate
		res.Sets = append(res.Sets, SetChange{Name: s.Name, Added: len(add), Removed: len(del)})
		if err := eachElementChunk(del, func(chunk []nftables.SetElement) error { return nc.SetDeleteElements(so, chunk) }); err != nil {
			return fmt.Errorf("queue deletes from set %s: %w", s.Name, err)
		}
		if err := addElements(nc, so, add); err != nil {
			return err
		}
	}
	return nil
}

func create(nc *nftables.Conn, t *nftables.Table, want *Ruleset, res *Result) error {
	nc.AddTable(t)
	ids := map[string]uint32{}
	for _, s := range want.Sets {
		if err := addSet(nc, t, s, ids, res); err != nil {
			return err
		}
	}
	ch := nc.AddChain(chainObj(t, want.Chain))
	addRules(nc, t, ch, want, ids)
	res.Rules = true
	return nil
}

// addSet queues set s with its elements, records its ID in ids for the rules
// of the same batch, and reports it in res.
//
// The ID is numbered here, per batch (1, 2, ...): the kernel only needs it
// unique within one transaction, and google/nftables v0.3.0's AddSet numbers
// a set whose ID is zero from an unlocked package global (allocSetID), which
// two goroutines building batches would race on. With a non-zero ID the
// library never reads or writes that global.
func addSet(nc *nftables.Conn, t *nftables.Table, s Set, ids map[string]uint32, res *Result) error {
	so := setObj(t, s)
	so.ID = uint32(len(ids)) + 1
	if err := nc.AddSet(so, nil); err != nil {
		return fmt.Errorf("queue set %s: %w", s.Name, err)
	}
	ids[s.Name] = so.ID
	if err := addElements(nc, so, s.Intervals); err != nil {
		return err
	}
	res.Sets = append(res.Sets, SetChange{Name: s.Name, Added: len(s.Intervals), Created: true})
	return nil
}

func addElements(nc *nftables.Conn, so *nftables.Set, ivs []Interval) error {
	if err := eachElementChunk(ivs, func(chunk []nftables.SetElement) error { return nc.SetAddElements(so, chunk) }); err != nil {
		return fmt.Errorf("queue elements of set %s: %w", so.Name, err)
	}
	return nil
}

func addRules(nc *nftables.Conn, t *nftables.Table, ch *nftables.Chain, want *Ruleset, setIDs map[string]uint32) {
	for _, r := range want.Rules {
		nc.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ruleExprs(r, setIDs), UserData: userData(r.Comment)})
	}
}

// Delete removes masqd's table. It reports whether there was one. It takes
// turns with Sync.
func (c *Conn) Delete(ctx context.Context, table string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := c.acquire(); err != nil {
		return false, err
	}
	defer c.release()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget()
	nc, err := c.newConn()
	if err != nil {
		return false, err
	}
	nc.DelTable(tableObj(table))
	if err := c.commit(nc); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("delete table %s: %w", table, err)
	}
	return true, nil
}

// State is what the kernel holds in masqd's chain.
type State struct {
	Exists bool
	// Rules are the chain's rules in order, with their counters.
	Rules []RuleCounter
}

// RuleCounter is a rule's comment and counter. In a NAT chain the counter
// counts connections (their first packets), not traffic.
type RuleCounter struct {
	Comment        string
	Packets, Bytes uint64
}

// Counters reads the rules of masqd's chain and their counters. It uses a
// socket of its own and is safe beside any other call (a metrics scrape
// during a sync).
func (c *Conn) Counters(ctx context.Context, table, chain string) (*State, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	defer c.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, err := c.newConn()
	if err != nil {
		return nil, err
	}
	t, err := nc.ListTableOfFamily(table, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list table %s: %w", table, err)
	}
	rules, err := nc.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil {
		return nil, fmt.Errorf("list rules of %s/%s: %w", table, chain, err)
	}
	st := &State{Exists: true}
	for _, r := range rules {
		rc := RuleCounter{}
		rc.Comment, _ = userdata.GetString(r.UserData, userdata.TypeComment)
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				rc.Packets, rc.Bytes = ctr.Packets, ctr.Bytes
			}
		}
		st.Rules = append(st.Rules, rc)
	}
	return st, nil
}
