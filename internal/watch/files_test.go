package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// patience bounds every wait; tests only ever reach it when they fail.
const patience = 5 * time.Second

const (
	msgChanged  = "config may have changed"
	msgIgnored  = "file event ignored"
	msgWatching = "watching config directory"
)

// logs records a Files' log entries and lets a test wait for one, so tests
// can see which events were judged relevant and which directories are
// watched without sleeping.
type logs struct {
	*observer.ObservedLogs
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every entry
}

func newLogs() (*zap.Logger, *logs) {
	core, obs := observer.New(zapcore.DebugLevel)
	l := &logs{ObservedLogs: obs, changed: make(chan struct{})}
	hooked := zapcore.RegisterHooks(core, func(zapcore.Entry) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		close(l.changed)
		l.changed = make(chan struct{})
		return nil
	})
	return zap.New(hooked), l
}

// count returns how many entries have message msg and the string field
// key=value.
func (l *logs) count(msg, key, value string) int {
	return l.FilterMessage(msg).FilterField(zap.String(key, value)).Len()
}

// waitCount waits until count(msg, key, value) reaches n.
func (l *logs) waitCount(t *testing.T, n int, msg, key, value string) {
	t.Helper()
	deadline := time.After(patience)
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if l.count(msg, key, value) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %d× %q with %s=%s; got %v", n, msg, key, value, l.All())
		}
	}
}

// settle writes name, which the watch must ignore, and waits until it has:
// events come in order, so every earlier one has been handled and any
// wake-up it caused has been fired.
func settle(t *testing.T, l *logs, name string) {
	t.Helper()
	n := l.count(msgIgnored, "name", name)
	write(t, name, "x")
	l.waitCount(t, n+1, msgIgnored, "name", name)
}

func waitFire(t *testing.T, tr *Trigger, what string) {
	t.Helper()
	select {
	case <-tr.C():
		if r := tr.Take(); r != ReasonFile {
			t.Errorf("%s: reason %s, want file", what, r)
		}
	case <-time.After(patience):
		t.Fatalf("no wake-up after %s", what)
	}
}

// drain clears a pending wake-up.
func drain(tr *Trigger) {
	select {
	case <-tr.C():
		tr.Take()
	default:
	}
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// watchPath watches path and fails the test if inotify is degraded.
func watchPath(t *testing.T, path string) (*Files, *Trigger, *logs) {
	t.Helper()
	tr := NewTrigger()
	log, l := newLogs()
	f, err := WatchFiles(path, tr, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	if f.Degraded() {
		t.Fatalf("watch degraded: %v", l.All())
	}
	return f, tr, l
}

// configMap lays out dir as kubelet mounts a ConfigMap with one key,
// config, and returns a function that publishes new content the way
// kubelet does.
func configMap(t testing.TB, dir string) (update func(ts, content string)) {
	t.Helper()
	current := ""
	update = func(ts, content string) {
		t.Helper()
		data := filepath.Join(dir, ts)
		must(t, os.Mkdir(data, 0o755))
		write(t, filepath.Join(data, "config"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		must(t, os.Symlink(ts, tmp))
		must(t, os.Rename(tmp, filepath.Join(dir, "..data")))
		if current != "" {
			must(t, os.RemoveAll(filepath.Join(dir, current)))
		}
		current = ts
	}
	update("..2026_01_01_00_00_00.000000001", "a")
	must(t, os.Symlink("..data/config", filepath.Join(dir, "config")))
	return update
}

// fileChanges are the ways a config file changes; each must fire the watch.
var fileChanges = []struct {
	name string
	// setup prepares dir, with elsewhere a second directory, before the
	// watch starts on dir/config.
	setup func(t *testing.T, dir, elsewhere string)
	act   func(t *testing.T, dir, elsewhere string)
}{{
	name:  "write in place",
	setup: func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "config"), "a") },
	act: func(t *testing.T, dir, _ string) {
		f, err := os.OpenFile(filepath.Join(dir, "config"), os.O_WRONLY|os.O_TRUNC, 0)
		must(t, err)
		_, err = f.WriteString("b")
		must(t, errors.Join(err, f.Close()))
	},
}, {
	name:  "editor writes a temp file and renames it over",
	setup: func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "config"), "a") },
	act: func(t *testing.T, dir, _ string) {
		tmp := filepath.Join(dir, ".config.swp")
		write(t, tmp, "b")
		must(t, os.Rename(tmp, filepath.Join(dir, "config")))
	},
}, {
	name:  "delete",
	setup: func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "config"), "a") },
	act:   func(t *testing.T, dir, _ string) { must(t, os.Remove(filepath.Join(dir, "config"))) },
}, {
	name:  "create",
	setup: func(*testing.T, string, string) {},
	act:   func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "config"), "a") },
}, {
	name:  "chmod",
	setup: func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "config"), "a") },
	act:   func(t *testing.T, dir, _ string) { must(t, os.Chmod(filepath.Join(dir, "config"), 0o600)) },
}, {
	name:  "ConfigMap symlink swap",
	setup: func(t *testing.T, dir, _ string) { configMap(t, dir) },
	act: func(t *testing.T, dir, _ string) {
		// Done by hand here, so the case shows each step kubelet takes.
		b := filepath.Join(dir, "..2026_b")
		must(t, os.Mkdir(b, 0o755))
		write(t, filepath.Join(b, "config"), "b")
		must(t, os.Symlink("..2026_b", filepath.Join(dir, "..data_tmp")))
		must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		must(t, os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.000000001")))
	},
}, {
	name: "symlink target in another directory written in place",
	setup: func(t *testing.T, dir, elsewhere string) {
		write(t, filepath.Join(elsewhere, "real"), "a")
		must(t, os.Symlink(filepath.Join(elsewhere, "real"), filepath.Join(dir, "config")))
	},
	act: func(t *testing.T, _, elsewhere string) { write(t, filepath.Join(elsewhere, "real"), "b") },
}, {
	name: "dangling symlink's target created",
	setup: func(t *testing.T, dir, elsewhere string) {
		must(t, os.Symlink(filepath.Join(elsewhere, "real"), filepath.Join(dir, "config")))
	},
	act: func(t *testing.T, _, elsewhere string) { write(t, filepath.Join(elsewhere, "real"), "a") },
}, {
	name: "symlink re-pointed",
	setup: func(t *testing.T, dir, elsewhere string) {
		write(t, filepath.Join(elsewhere, "real"), "a")
		must(t, os.Symlink(filepath.Join(elsewhere, "real"), filepath.Join(dir, "config")))
	},
	act: func(t *testing.T, dir, elsewhere string) {
		write(t, filepath.Join(elsewhere, "real2"), "b")
		tmp := filepath.Join(dir, "config.tmp")
		must(t, os.Symlink(filepath.Join(elsewhere, "real2"), tmp))
		must(t, os.Rename(tmp, filepath.Join(dir, "config")))
	},
}}

func TestFileConfigChangesFire(t *testing.T) {
	for _, tc := range fileChanges {
		t.Run(tc.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			tc.setup(t, dir, elsewhere)
			_, tr, _ := watchPath(t, filepath.Join(dir, "config"))
			tc.act(t, dir, elsewhere)
			waitFire(t, tr, tc.name)
		})
	}
}

// TestConfigMapSwapsKeepFiring checks that the watches follow each swap.
func TestConfigMapSwapsKeepFiring(t *testing.T) {
	dir := t.TempDir()
	update := configMap(t, dir)
	_, tr, _ := watchPath(t, filepath.Join(dir, "config"))
	for _, ts := range []string{"..2026_b", "..2026_c", "..2026_d"} {
		update(ts, ts)
		waitFire(t, tr, "swap to "+ts)
	}
}

func TestDirectoryConfigChangesFire(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, dir, elsewhere string)
	}{
		{"drop-in added", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "20-new"), "b") }},
		{"drop-in removed", func(t *testing.T, dir, _ string) { must(t, os.Remove(filepath.Join(dir, "10-base"))) }},
		{"drop-in written", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, "10-base"), "b") }},
		{"drop-in renamed", func(t *testing.T, dir, _ string) {
			must(t, os.Rename(filepath.Join(dir, "10-base"), filepath.Join(dir, "30-base")))
		}},
		{"hidden entry added", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, ".hidden"), "b") }},
		{"subdirectory added", func(t *testing.T, dir, _ string) { must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755)) }},
		{"symlinked drop-in's target written in place", func(t *testing.T, _, elsewhere string) {
			write(t, filepath.Join(elsewhere, "real"), "b")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, elsewhere := t.TempDir(), t.TempDir()
			write(t, filepath.Join(dir, "10-base"), "a")
			write(t, filepath.Join(elsewhere, "real"), "a")
			must(t, os.Symlink(filepath.Join(elsewhere, "real"), filepath.Join(dir, "20-link")))
			_, tr, _ := watchPath(t, dir)
			tc.act(t, dir, elsewhere)
			waitFire(t, tr, tc.name)
		})
	}
}

// TestDirectoryConfigSymlinkRepointed has the config directory be a symlink
// that is re-pointed, and whose target is removed and re-created; drop-ins
// of the current target must fire each time.
func TestDirectoryConfigSymlinkRepointed(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		must(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	path := filepath.Join(root, "conf")
	must(t, os.Symlink("v1", path))
	_, tr, l := watchPath(t, path)
	noise := filepath.Join(root, "noise")
	dropIn := func(name string) {
		t.Helper()
		settle(t, l, noise)
		drain(tr)
		write(t, filepath.Join(root, "v2", name), "x")
		l.waitCount(t, 1, msgChanged, "name", filepath.Join(path, name))
		waitFire(t, tr, "drop-in "+name)
	}

	must(t, os.Symlink("v2", filepath.Join(root, "conf.tmp")))
	must(t, os.Rename(filepath.Join(root, "conf.tmp"), path))
	waitFire(t, tr, "symlink re-pointed")
	dropIn("10-a")

	must(t, os.RemoveAll(filepath.Join(root, "v2")))
	waitFire(t, tr, "target removed")
	must(t, os.Mkdir(filepath.Join(root, "v2"), 0o755))
	waitFire(t, tr, "target re-created")
	dropIn("10-b")

	// Both before the watch can react: the watch of the old target must
	// not survive.
	must(t, os.RemoveAll(filepath.Join(root, "v2")))
	must(t, os.Mkdir(filepath.Join(root, "v2"), 0o755))
	dropIn("10-c")
}

func TestDirectoryConfigMapSwapFires(t *testing.T) {
	dir := t.TempDir()
	update := configMap(t, dir)
	_, tr, _ := watchPath(t, dir)
	update("..2026_b", "b")
	waitFire(t, tr, "swap")
}

// TestUnrelatedEntriesIgnored writes noise and checks that the watch saw
// it, judged it irrelevant, and fired nothing.
func TestUnrelatedEntriesIgnored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string // relative to the temporary directory
		noise  string // an entry the watch must ignore
	}{
		{"next to a config file", "config", "other"},
		{"next to a config file, a similar name", "config", "config.bak"},
		{"a hidden file next to a config file", "config", ".config.swp"},
		{"beside a missing config directory", "etc/masqd", "unrelated"},
		{"beside a missing ancestor", "a/b/config", "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			_, tr, l := watchPath(t, filepath.Join(root, tc.config))
			settle(t, l, filepath.Join(root, tc.noise))
			select {
			case <-tr.C():
				t.Errorf("%s fired: %s", tc.noise, tr.Take())
			default:
			}
		})
	}
}

// TestMissingFileConfigAppears watches a file whose directories do not exist
// yet, and follows them down as they appear.
func TestMissingFileConfigAppears(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "config")
	_, tr, l := watchPath(t, path)
	must(t, os.Mkdir(filepath.Join(root, "a"), 0o755))
	waitFire(t, tr, "a created")
	must(t, os.Mkdir(filepath.Join(root, "a", "b"), 0o755))
	waitFire(t, tr, "b created")
	l.waitCount(t, 1, msgWatching, "dir", filepath.Dir(path))
	drain(tr)
	write(t, path, "x")
	l.waitCount(t, 1, msgChanged, "name", path)
	waitFire(t, tr, "config created")
}

// TestDirectoryConfigComesAndGoes has the config directory appear at once
// with its parents, be removed, and be re-created; drop-ins in each
// incarnation must fire.
func TestDirectoryConfigComesAndGoes(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "etc", "masqd")
	_, tr, l := watchPath(t, path)

	must(t, os.MkdirAll(path, 0o755))
	l.waitCount(t, 1, msgWatching, "dir", path)
	drain(tr)
	write(t, filepath.Join(path, "10-a"), "x")
	l.waitCount(t, 1, msgChanged, "name", filepath.Join(path, "10-a"))
	waitFire(t, tr, "drop-in added")

	// The watch moves up to the parent; the wake-up comes once it is there.
	parent := filepath.Dir(path)
	n := l.count(msgWatching, "dir", parent)
	must(t, os.RemoveAll(path))
	l.waitCount(t, n+1, msgWatching, "dir", parent)
	waitFire(t, tr, "directory removed")

	must(t, os.Mkdir(path, 0o755))
	l.waitCount(t, 2, msgWatching, "dir", path)
	drain(tr)
	write(t, filepath.Join(path, "10-b"), "x")
	l.waitCount(t, 1, msgChanged, "name", filepath.Join(path, "10-b"))
	waitFire(t, tr, "drop-in added to the new directory")
}

// TestFileConfigDirectoryReplaced removes and re-creates the directory of a
// config file.
func TestFileConfigDirectoryReplaced(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "etc")
	must(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "config")
	write(t, path, "a")
	_, tr, l := watchPath(t, path)

	must(t, os.RemoveAll(dir))
	waitFire(t, tr, "directory removed")
	must(t, os.Mkdir(dir, 0o755))
	l.waitCount(t, 2, msgWatching, "dir", dir)
	drain(tr)
	write(t, path, "b")
	l.waitCount(t, 2, msgChanged, "name", path)
	waitFire(t, tr, "config re-created")
}

func TestRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, tr, _ := watchPath(t, "config")
	write(t, filepath.Join(dir, "config"), "a")
	waitFire(t, tr, "write")
}

func TestNoInotify(t *testing.T) {
	tr := NewTrigger()
	log, l := newLogs()
	f, err := watchFiles(t.TempDir(), tr, log, func() (*fsnotify.Watcher, error) {
		return nil, errors.New("too many open files")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Degraded() {
		t.Error("not degraded without inotify")
	}
	if n := l.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

// TestOverflow feeds the watcher the error inotify reports when its queue
// overflowed: it must warn once, fire, report degraded, and keep watching.
func TestOverflow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	f, tr, l := watchPath(t, path)
	for range 2 {
		f.w.Errors <- fsnotify.ErrEventOverflow
		waitFire(t, tr, "overflow")
	}
	if !f.Degraded() {
		t.Error("not degraded after an overflow")
	}
	if n := l.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Errorf("%d warnings, want 1: %v", n, l.All())
	}
	l.waitCount(t, 3, msgWatching, "dir", dir) // Watched afresh after each overflow.
	write(t, path, "a")
	l.waitCount(t, 1, msgChanged, "name", path)
	waitFire(t, tr, "write after overflow")
}

// TestBurstCoalesces writes many times with nobody receiving: the Trigger
// holds one wake-up, and once it is taken nothing more is pending.
func TestBurstCoalesces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	_, tr, l := watchPath(t, path)
	for i := range 50 {
		write(t, path, string(rune('a'+i%26)))
	}
	must(t, os.Remove(path))
	// A last relevant event, so that once it is logged every event of the
	// burst has been handled.
	last := filepath.Join(dir, "..last")
	write(t, last, "x")
	l.waitCount(t, 1, msgChanged, "name", last)
	waitFire(t, tr, "burst")
	select {
	case <-tr.C():
		t.Error("a burst made more than one wake-up")
	default:
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		dir := t.TempDir()
		f, err := WatchFiles(filepath.Join(dir, "missing", "config"), NewTrigger(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "noise"), "x")
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	// Close has waited for both goroutines to finish their work; they may
	// still be on their way out of the scheduler.
	deadline := time.Now().Add(patience)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

const msgHeld = "config file emptied in place; waiting for its content, or for the next resync if it stays empty"

// TestEmptiedInPlaceIsHeld truncates the config and writes it later, as
// `printf > file` does with a slow command: the empty file is never fired,
// while it is held a resync must re-read (UpToDate is false), and the write
// fires.
func TestEmptiedInPlaceIsHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	write(t, path, "a")
	f, tr, l := watchPath(t, path)
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	l.waitCount(t, 1, msgHeld, "config", path)
	select {
	case <-tr.C():
		t.Fatalf("the emptied file fired: %s", tr.Take())
	default:
	}
	if f.UpToDate() {
		t.Error("UpToDate while an emptied file is held")
	}
	_, err = fd.WriteString("b")
	must(t, errors.Join(err, fd.Close()))
	waitFire(t, tr, "the write after the truncate")
	if got, err := os.ReadFile(path); err != nil || string(got) != "b" {
		t.Errorf("at the wake-up the file held %q (%v)", got, err)
	}
	if !f.UpToDate() {
		t.Error("not UpToDate after the write fired")
	}
}

// TestTruncateAndWriteFireWithContent: a truncate with its write right
// behind it is one burst, or on a slow machine a held truncate and a write;
// either way, when the wake-up comes, the file has its content.
func TestTruncateAndWriteFireWithContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	write(t, path, "a")
	_, tr, _ := watchPath(t, path)
	write(t, path, "b")
	waitFire(t, tr, "truncate and write")
	if got, err := os.ReadFile(path); err != nil || string(got) != "b" {
		t.Errorf("at the wake-up the file held %q (%v)", got, err)
	}
}

// TestEmptiedOtherwiseFires: an empty file renamed over the config, or the
// config removed, is what the operator asked for: it fires.
func TestEmptiedOtherwiseFires(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	write(t, path, "a")
	_, tr, _ := watchPath(t, path)
	write(t, filepath.Join(dir, ".tmp"), "")
	must(t, os.Rename(filepath.Join(dir, ".tmp"), path))
	waitFire(t, tr, "an empty file renamed over the config")
	write(t, path, "a")
	waitFire(t, tr, "a write")
	must(t, os.Remove(path))
	waitFire(t, tr, "removal")
}

// TestDebounceBounded appends to the config without a pause: the wake-up
// comes during the stream, MaxDelay after its start, not when it ends.
func TestDebounceBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	write(t, path, "a")
	_, tr, _ := watchPath(t, path)
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer fd.Close()
	// A loaded machine can stop the writer for Quiet; then the file was
	// quiet and the wake-up is right. Such a run proves nothing: try again.
	for try := 1; ; try++ {
		took, gap, writes := writeUntilWake(t, fd, tr)
		t.Logf("try %d: fired after %v and %d writes; longest pause between writes %v", try, took.Round(time.Millisecond), writes, gap)
		switch {
		case took >= MaxDelay:
			return
		case gap < Quiet/2:
			t.Fatalf("fired after %v, before MaxDelay %v, while the writes went on (longest pause %v)", took, MaxDelay, gap)
		case try == 5:
			t.Fatalf("the writer paused for Quiet/2 or longer in each of %d tries; cannot tell", try)
		}
		tr.Take()
		time.Sleep(2 * MaxDelay) // let the watch settle before the next try
		select {
		case <-tr.C():
			tr.Take()
		default:
		}
	}
}

// writeUntilWake appends to fd without stopping until tr fires, and says
// how long that took, the longest pause between two writes, and how many
// writes it made.
func writeUntilWake(t *testing.T, fd *os.File, tr *Trigger) (took, gap time.Duration, writes int) {
	t.Helper()
	start := time.Now()
	last := start
	for ; ; writes++ {
		_, err := fd.WriteString("a")
		must(t, err)
		now := time.Now()
		gap = max(gap, now.Sub(last))
		last = now
		select {
		case <-tr.C():
			return now.Sub(start), gap, writes
		default:
		}
		if now.Sub(start) > patience {
			t.Fatalf("no wake-up during %d writes in %v", writes, patience)
		}
	}
}

// BenchmarkConfigMapSwapWake measures the time from a ConfigMap swap to the
// wake-up: Quiet, and the watch's own work.
func BenchmarkConfigMapSwapWake(b *testing.B) {
	dir := b.TempDir()
	update := configMap(b, dir)
	tr := NewTrigger()
	f, err := WatchFiles(filepath.Join(dir, "config"), tr, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	i := 0
	for b.Loop() {
		i++
		update(fmt.Sprintf("..2026_%d", i), "x")
		select {
		case <-tr.C():
			tr.Take()
		case <-time.After(patience):
			b.Fatalf("no wake-up after swap %d", i)
		}
	}
}

// TestBurstWait: a burst of replacements (renames, creations, removals)
// waits QuietReplace, one with a write in place Quiet, from then on.
func TestBurstWait(t *testing.T) {
	b := burst{inPlace: map[string]bool{}}
	defer b.stop()
	for _, step := range []struct {
		op   fsnotify.Op
		want time.Duration
	}{
		{fsnotify.Create, QuietReplace},
		{fsnotify.Rename, QuietReplace},
		{fsnotify.Remove, QuietReplace},
		{fsnotify.Write, Quiet},
		{fsnotify.Create, Quiet},
	} {
		b.add(fsnotify.Event{Name: "/config", Op: step.op})
		// MaxDelay is far away: the steps take microseconds, or on a
		// stalled machine less than MaxDelay-Quiet.
		if got := b.wait(); got != step.want && time.Since(b.first) < MaxDelay-Quiet {
			t.Errorf("after %s: waits %v, want %v", step.op, got, step.want)
		}
	}
	<-b.quiet
	b.quiet = nil
	b.add(fsnotify.Event{Name: "/config", Op: fsnotify.Rename})
	if got := b.wait(); got != QuietReplace {
		t.Errorf("a new burst of a rename waits %v, want %v", got, QuietReplace)
	}
}

// TestCreatedThenWrittenFiresWithContent: a new config file is created
// empty and written a moment later, longer than QuietReplace: the wake-up
// comes with the content.
func TestCreatedThenWrittenFiresWithContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	_, tr, _ := watchPath(t, path)
	fd, err := os.Create(path)
	must(t, err)
	created := time.Now()
	time.Sleep(3 * QuietReplace)
	select {
	case <-tr.C():
		why := tr.Take()
		if took := time.Since(created); took >= Quiet {
			t.Skipf("the write came %v after the create, beyond Quiet: the empty file rightly fired", took)
		}
		t.Fatalf("the new, still empty file fired: %s", why)
	default:
	}
	_, err = fd.WriteString("b")
	must(t, errors.Join(err, fd.Close()))
	waitFire(t, tr, "the create and the write")
	if got, err := os.ReadFile(path); err != nil || string(got) != "b" {
		t.Errorf("at the wake-up the file held %q (%v)", got, err)
	}
}
