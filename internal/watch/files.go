package watch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Files watches a config path, a file or a directory, which need not exist
// yet. It watches the directory and re-reads by path: kubelet updates a
// ConfigMap by swapping a `..data` symlink, and editors replace files by
// rename, so a watch on the file itself would go stale.
type Files struct {
	path     string
	w        *fsnotify.Watcher
	t        *Trigger
	log      *zap.Logger
	watched  string // the directory being watched
	degraded atomic.Bool
	done     chan struct{}
}

// WatchFiles starts watching path. If inotify is unavailable it logs once,
// reports Degraded, and the resync ticker carries on alone.
func WatchFiles(path string, t *Trigger, log *zap.Logger) (*Files, error) {
	f := &Files{path: filepath.Clean(path), t: t, log: log, done: make(chan struct{})}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		f.degrade("cannot create an inotify watch; relying on the resync interval", err)
		close(f.done)
		return f, nil
	}
	f.w = w
	f.arm()
	go f.loop()
	return f, nil
}

// Degraded reports whether file events may be missed.
func (f *Files) Degraded() bool { return f.degraded.Load() }

// Close stops watching.
func (f *Files) Close() error {
	if f.w == nil {
		return nil
	}
	err := f.w.Close()
	<-f.done
	return err
}

func (f *Files) degrade(msg string, err error) {
	if !f.degraded.Swap(true) {
		f.log.Warn(msg, zap.String("path", f.path), zap.Error(err))
	}
}

// target is the directory whose entries decide the config: the path itself
// when it is a directory, else its parent.
func (f *Files) target() string {
	if st, err := os.Stat(f.path); err == nil && st.IsDir() {
		return f.path
	}
	return filepath.Dir(f.path)
}

// arm watches the target directory, or its nearest existing ancestor until
// the directory appears.
func (f *Files) arm() {
	dir := f.target()
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	if dir == f.watched {
		return
	}
	if f.watched != "" {
		_ = f.w.Remove(f.watched)
	}
	if err := f.w.Add(dir); err != nil {
		f.degrade("cannot watch the config directory; relying on the resync interval", err)
		f.watched = ""
		return
	}
	f.watched = dir
}

func (f *Files) loop() {
	defer close(f.done)
	for {
		select {
		case ev, ok := <-f.w.Events:
			if !ok {
				return
			}
			if f.relevant(ev.Name) {
				f.arm()
				f.t.Fire(ReasonFile)
			}
		case err, ok := <-f.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				f.degrade("inotify queue overflowed; events may be lost, relying on the resync interval too", err)
			} else {
				f.degrade("inotify failed; relying on the resync interval", err)
			}
			f.arm()
			f.t.Fire(ReasonFile)
		}
	}
}

// relevant filters out changes to unrelated files next to a config file.
func (f *Files) relevant(name string) bool {
	if f.watched != f.target() {
		return true // An ancestor changed: the directory may have appeared.
	}
	if f.target() == f.path {
		return true // A config directory: every entry counts.
	}
	base := filepath.Base(name)
	return base == filepath.Base(f.path) || strings.HasPrefix(base, "..")
}
