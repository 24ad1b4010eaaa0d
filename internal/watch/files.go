package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// armPasses bounds how often arm looks again at a path that keeps changing
// under it; each pass normally moves one directory deeper.
const armPasses = 64

// Files fires once the path has been quiet for Quiet after an event, and at
// the latest MaxDelay after the first event of a burst, however long the
// burst: a truncate and the write after it make one wake-up, and a
// half-written file is not read.
//
// A burst without a write in place (a file renamed over the config, a
// ConfigMap's `..data` swap, a removal) only needs QuietReplace: each of
// its steps leaves whole files, so reading between two steps reads a
// consistent config, and the wait only gathers steps that come together.
// This is what an atomic update, the way ConfigMaps and most tools write,
// pays before the reload starts.
const (
	Quiet        = 40 * time.Millisecond
	QuietReplace = 5 * time.Millisecond
	MaxDelay     = 100 * time.Millisecond
)

// Files watches a config path, a file or a directory, which need not exist
// yet, and fires ReasonFile on every change that may alter what reading the
// path returns.
//
// It watches directories and re-reads by path, never a file alone: kubelet
// updates a ConfigMap by swapping a `..data` symlink to a new directory,
// editors replace files by rename, and a watch on the old inode would go
// stale. While the directory is missing it watches the nearest existing
// ancestor and moves down as path components appear, and back up when they
// go. Symlinks, for the config file, the directory, or a directory's
// entries, are also followed to the directory of their target, so that an
// in-place write there, a re-pointed link, or a target that appears later
// is seen too. Each event is logged at debug level, relevant or ignored.
//
// Events are debounced (Quiet, QuietReplace, MaxDelay), and bursts coalesce in the
// Trigger too; the receiver re-reads the whole config whenever it gets
// round to it.
//
// A burst that only wrote in place to files that are now empty is held
// back: that is a truncate whose write has not come yet (`printf > file`
// with a slow command, an editor saving in place), and reading it would
// apply the defaults for a moment. The write that follows fires as usual.
// A file that stays empty is applied by the next resync, which re-reads
// while UpToDate is false. A file removed, or an empty file renamed over
// the config, fires at once: that is what the operator asked for.
type Files struct {
	path     string // absolute and clean
	w        *fsnotify.Watcher
	t        *Trigger
	log      *zap.Logger
	degraded atomic.Bool
	held     atomic.Bool
	done     chan struct{}

	// Owned by the goroutine, and by WatchFiles before it starts it.
	watched map[string]bool // directories holding an inotify watch
	v       view            // what the last look saw
}

// view is what the path looked like at one moment: which directories to
// watch and which of their entries matter.
type view struct {
	// base is the directory whose entries decide the config: the path when
	// it is a directory, else its parent.
	base string
	// anchor is base, or while base is missing its nearest existing ancestor.
	anchor string
	// links are paths outside base's own entries whose change matters: the
	// targets of symlinked config files and of dangling links on the way to
	// base, and base itself when it is a symlink.
	links map[string]bool
	// dirs are the directories to watch: anchor and the links' parents.
	dirs map[string]bool
	// baseTarget is where base leads when base is a symlink: the watch of
	// base is on it, and goes stale when it is removed or replaced.
	baseTarget string
}

// WatchFiles starts watching path and returns once the first watch is in
// place, so every change after it returns is seen. If inotify is
// unavailable it logs once, reports Degraded, and the resync ticker carries
// on alone; that is not an error.
func WatchFiles(path string, t *Trigger, log *zap.Logger) (*Files, error) {
	return watchFiles(path, t, log, fsnotify.NewWatcher)
}

func watchFiles(path string, t *Trigger, log *zap.Logger, newWatcher func() (*fsnotify.Watcher, error)) (*Files, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	f := &Files{
		path:    abs,
		t:       t,
		log:     log.With(zap.String("config", abs)),
		done:    make(chan struct{}),
		watched: map[string]bool{},
	}
	w, err := newWatcher()
	if err != nil {
		f.degrade("cannot create an inotify instance; relying on the resync interval", err)
		close(f.done)
		return f, nil
	}
	f.w = w
	f.arm()
	go f.loop()
	return f, nil
}

// Degraded reports whether file events may be missed, so that only the
// resync interval notices changes: inotify could not be set up, failed, or
// lost events. It stays true once set.
func (f *Files) Degraded() bool { return f.degraded.Load() }

// UpToDate reports whether every change to the path has been fired, so
// that a resync need not re-read it: false when Degraded, and while an
// emptied file is held back.
func (f *Files) UpToDate() bool { return !f.degraded.Load() && !f.held.Load() }

// Close stops watching and waits for the goroutine to end.
func (f *Files) Close() error {
	if f.w == nil {
		return nil
	}
	err := f.w.Close()
	<-f.done
	if err != nil {
		return fmt.Errorf("close watch of %s: %w", f.path, err)
	}
	return nil
}

func (f *Files) degrade(msg string, err error) {
	if !f.degraded.Swap(true) {
		f.log.Warn(msg, zap.Error(err))
	}
}

func (f *Files) loop() {
	defer close(f.done)
	b := burst{inPlace: map[string]bool{}}
	defer b.stop()
	for {
		select {
		case <-b.quiet:
			if rest := b.awaitContent(); rest > 0 {
				b.timer.Reset(rest)
				continue
			}
			b.quiet = nil
			f.settle(b.inPlace)
			clear(b.inPlace)
		case ev, ok := <-f.w.Events:
			if !ok {
				return
			}
			if !f.relevant(ev.Name) {
				f.log.Debug("file event ignored", zap.String("name", ev.Name), zap.Stringer("op", ev.Op))
				continue
			}
			if ev.Op.Has(fsnotify.Create | fsnotify.Remove | fsnotify.Rename) {
				// The name may no longer lead to the inode the watch is on: a
				// directory re-created, renamed over, or a symlink re-pointed
				// under the same name needs a watch of its own.
				if f.lost(ev.Name) {
					f.forget(ev.Name)
				}
				if ev.Name == f.v.baseTarget && f.watched[f.v.base] {
					f.forget(f.v.base)
				}
			}
			f.log.Debug("config may have changed", zap.String("name", ev.Name), zap.Stringer("op", ev.Op))
			f.arm()
			b.add(ev)
		case err, ok := <-f.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				f.degrade("inotify queue overflowed; relying on the resync interval too", err)
			} else {
				f.degrade("inotify failed; relying on the resync interval too", err)
			}
			// Events may be lost: start the watches afresh and re-read once.
			for dir := range f.watched {
				f.forget(dir)
			}
			f.arm()
			f.held.Store(false)
			f.t.Fire(ReasonFile)
		}
	}
}

// burst is the relevant events since the last wake-up, waiting for the
// path to be quiet.
type burst struct {
	timer *time.Timer
	quiet <-chan time.Time // the timer's channel while events wait; else nil
	first time.Time        // when the first waiting event came
	// inPlace maps each name of the waiting events to whether all its
	// events were writes in place.
	inPlace map[string]bool
	// writes is whether any waiting event was a write in place.
	writes bool
}

// add records ev and sets the timer to Quiet from now (QuietReplace while
// the burst has no write in place), or to MaxDelay after the first waiting
// event if that is sooner.
func (b *burst) add(ev fsnotify.Event) {
	written, seen := b.inPlace[ev.Name]
	b.inPlace[ev.Name] = (written || !seen) && ev.Op == fsnotify.Write
	if b.quiet == nil {
		b.first, b.writes = time.Now(), false
	}
	b.writes = b.writes || ev.Op.Has(fsnotify.Write)
	wait := b.wait()
	if b.timer == nil {
		b.timer = time.NewTimer(wait)
	} else {
		b.timer.Reset(wait)
	}
	b.quiet = b.timer.C
}

// wait is how long the burst waits after its latest event.
func (b *burst) wait() time.Duration {
	quiet := QuietReplace
	if b.writes {
		quiet = Quiet
	}
	return min(quiet, max(0, MaxDelay-time.Since(b.first)))
}

// awaitContent returns how much longer a burst without writes in place
// waits: the rest of Quiet since its first event while one of its names is
// an empty regular file, which a write may yet fill (a new file is created
// empty, then written).
func (b *burst) awaitContent() time.Duration {
	rest := Quiet - time.Since(b.first)
	if b.writes || rest <= 0 {
		return 0
	}
	for name := range b.inPlace {
		if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
			return rest
		}
	}
	return 0
}

func (b *burst) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// settle ends a burst of events: it fires, unless the burst only emptied
// files in place (inPlace maps each name to whether all its events were
// writes in place).
func (f *Files) settle(inPlace map[string]bool) {
	if emptied(inPlace) {
		if !f.held.Swap(true) {
			f.log.Info("config file emptied in place; waiting for its content, or for the next resync if it stays empty")
		}
		return
	}
	f.held.Store(false)
	f.log.Debug("config settled", zap.Int("names", len(inPlace)))
	f.t.Fire(ReasonFile)
}

// emptied reports whether every name was only written in place and is now
// an empty regular file.
func emptied(inPlace map[string]bool) bool {
	for name, written := range inPlace {
		st, err := os.Stat(name)
		if !written || err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
			return false
		}
	}
	return len(inPlace) > 0
}

// relevant reports whether an event on name may change the config.
func (f *Files) relevant(name string) bool {
	v := &f.v
	if f.watched[name] || v.links[name] {
		return true
	}
	dir := filepath.Dir(name)
	switch {
	case v.anchor != v.base:
		// Waiting for base to appear: only the next component on its way counts.
		return dir == v.anchor && (name == v.base || strings.HasPrefix(v.base, name+string(filepath.Separator)))
	case dir != v.base:
		return false
	case v.base == f.path:
		return true // A config directory: every entry counts.
	}
	// A config file: its own name, and the `..data` and `..2026_…` entries
	// of a ConfigMap mount that its symlink goes through.
	n := filepath.Base(name)
	return n == filepath.Base(f.path) || strings.HasPrefix(n, "..")
}

// lost reports whether an event that dir was created, removed or moved
// means that its watch is no longer on what dir names. fsnotify drops the
// watch of a directory before it reports the directory's own removal or
// move, so if it still lists dir, that is a watch added since, on what dir
// names now: it stays. An event reported by the parent's watch, with the
// child's watch still listed, may be about the current one: it goes, and
// arm adds it again.
func (f *Files) lost(dir string) bool {
	switch {
	case !f.watched[dir]:
		return false
	case f.watched[filepath.Dir(dir)]:
		return true
	}
	return !slices.Contains(f.w.WatchList(), dir)
}

// forget drops the watch of dir.
func (f *Files) forget(dir string) {
	// The watch may already be gone with its inode: nothing to undo then.
	_ = f.w.Remove(dir)
	delete(f.watched, dir)
}

// arm points the watches at what the path looks like now. Directories can
// appear or vanish while it works, so after any change it looks again, until
// a look finds nothing new to watch.
func (f *Files) arm() {
	for range armPasses {
		f.v = f.look()
		changed, closed := f.apply(f.v.dirs)
		if !changed || closed {
			return
		}
	}
	f.degrade("config path keeps changing; relying on the resync interval", fmt.Errorf("path changed during %d passes", armPasses))
}

// apply watches dirs and nothing else. changed reports a watch added, or a
// directory that vanished before it could be watched.
func (f *Files) apply(dirs map[string]bool) (changed, closed bool) {
	for dir := range f.watched {
		if !dirs[dir] {
			f.forget(dir)
		}
	}
	for dir := range dirs {
		if f.watched[dir] {
			continue
		}
		err := f.w.Add(dir)
		switch {
		case err == nil:
			f.log.Debug("watching config directory", zap.String("dir", dir))
			f.watched[dir] = true
			changed = true
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			changed = true
		case errors.Is(err, fsnotify.ErrClosed):
			return changed, true
		default:
			f.degrade("cannot watch a config directory; relying on the resync interval", err)
		}
	}
	return changed, false
}

// look reads the file system to find what to watch.
func (f *Files) look() view {
	v := view{base: filepath.Dir(f.path), links: map[string]bool{}, dirs: map[string]bool{}}
	// One Stat decides: should the path vanish right after, adding its
	// watch fails and arm looks again.
	if st, err := os.Stat(f.path); err == nil && st.IsDir() {
		v.base = f.path
		v.anchor = f.path
	} else {
		v.anchor = v.base
		for {
			if _, err := os.Stat(v.anchor); err == nil || v.anchor == filepath.Dir(v.anchor) {
				break
			}
			if isSymlink(v.anchor) {
				// A dangling link on the way: its target appearing matters.
				v.follow(v.anchor)
			}
			v.anchor = filepath.Dir(v.anchor)
		}
	}
	v.dirs[v.anchor] = true
	if v.anchor != v.base {
		return v
	}
	if isSymlink(v.base) {
		// The link can be re-pointed, and the directory it leads to removed.
		v.link(v.base)
		v.baseTarget = v.follow(v.base)
	}
	if v.base != f.path {
		if isSymlink(f.path) {
			v.follow(f.path)
		}
		return v
	}
	entries, err := os.ReadDir(v.base)
	if err != nil {
		return v
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 {
			v.follow(filepath.Join(v.base, e.Name()))
		}
	}
	return v
}

// follow adds the final target of the symlink at name and returns it. For
// a dangling link it adds the target of its first step, if that target's
// directory exists, so that the target's creation is seen.
func (v *view) follow(name string) string {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		if target, err = os.Readlink(name); err != nil {
			return ""
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(name), target)
		}
		if _, err := os.Stat(filepath.Dir(target)); err != nil {
			return ""
		}
	}
	v.link(target)
	return target
}

// link makes changes to name matter, by watching its parent.
func (v *view) link(name string) {
	v.links[name] = true
	v.dirs[filepath.Dir(name)] = true
}

func isSymlink(name string) bool {
	st, err := os.Lstat(name)
	return err == nil && st.Mode()&fs.ModeSymlink != 0
}
