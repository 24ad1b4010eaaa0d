package watch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

func waitFire(t *testing.T, tr *Trigger, what string) {
	t.Helper()
	select {
	case <-tr.C():
		tr.Take()
	case <-time.After(5 * time.Second):
		t.Fatalf("no event for %s", what)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func watchPath(t *testing.T, path string) *Trigger {
	t.Helper()
	tr := NewTrigger()
	f, err := WatchFiles(path, tr, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if f.Degraded() {
		t.Fatal("watch degraded")
	}
	return tr
}

func TestFileEvents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ip-masq-agent")
	write(t, path, "a")
	tr := watchPath(t, path)

	write(t, path, "b")
	waitFire(t, tr, "in-place write")

	tmp := filepath.Join(dir, ".tmp")
	write(t, tmp, "c")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFire(t, tr, "rename over")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFire(t, tr, "delete")
	write(t, path, "d")
	waitFire(t, tr, "re-create")
}

func TestUnrelatedFileIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ip-masq-agent")
	write(t, path, "a")
	tr := watchPath(t, path)
	write(t, filepath.Join(dir, "other"), "x")
	write(t, path, "b") // an event that must arrive after the unrelated one
	waitFire(t, tr, "write")
	select {
	case <-tr.C():
		t.Fatal("a second wake-up: the unrelated file fired")
	default:
	}
}

func TestConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ts, content string) {
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, ts, "config"), content)
	}
	mk("..2026_a", "a")
	if err := os.Symlink("..2026_a", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	if err := os.Symlink("..data/config", path); err != nil {
		t.Fatal(err)
	}
	tr := watchPath(t, path)
	mk("..2026_b", "b")
	if err := os.Symlink("..2026_b", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFire(t, tr, "..data swap")
}

func TestDirectoryAppearsLater(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "etc", "config")
	tr := watchPath(t, path)
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFire(t, tr, "directory created")
	write(t, filepath.Join(path, "10-extra"), "x")
	waitFire(t, tr, "drop-in added")
	if err := os.Remove(filepath.Join(path, "10-extra")); err != nil {
		t.Fatal(err)
	}
	waitFire(t, tr, "drop-in removed")
}

func TestTriggerCoalesces(t *testing.T) {
	tr := NewTrigger()
	tr.Fire(ReasonFile)
	tr.Fire(ReasonResync)
	tr.Fire(ReasonFile)
	<-tr.C()
	if r := tr.Take(); r != ReasonFile|ReasonResync {
		t.Errorf("Take = %s, want file|resync", r)
	}
	select {
	case <-tr.C():
		t.Error("three fires made more than one wake-up")
	default:
	}
}
