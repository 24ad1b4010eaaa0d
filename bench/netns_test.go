package main

import (
	"context"
	"os"
	"syscall"
	"testing"
)

func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(fi)
}

// TestDoEntersAndLeaves checks the one mechanism every kernel command of
// the harness relies on: fn runs inside the namespace, and the calling
// goroutine's thread never does.
func TestDoEntersAndLeaves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	set := newNamespaces()
	defer set.CloseAll()
	ns, err := set.Add(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	host := netnsInode(t, "/proc/self/ns/net")
	want := netnsInode(t, ns.Path())
	if host == want {
		t.Fatal("a new namespace has the host's inode")
	}
	var inside uint64
	if err := ns.Do(func() error {
		inside = netnsInode(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != want {
		t.Errorf("fn ran in namespace inode %d, want %d", inside, want)
	}
	if got := netnsInode(t, "/proc/thread-self/ns/net"); got != host {
		t.Errorf("caller's thread is in namespace inode %d after Do, want the host's %d", got, host)
	}
	ns.Close()
	if _, err := os.Stat(ns.Path()); !os.IsNotExist(err) {
		t.Errorf("namespace %s still exists after Close: %v", ns.Path(), err)
	}
}

// statIno is the inode number of a stat result (a namespace's identity).
func statIno(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
