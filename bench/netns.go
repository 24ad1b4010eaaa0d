package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// nsPrefix starts the name of every namespace the harness creates.
const nsPrefix = "masqd-bench-"

// namespaces creates and always removes the harness's network namespaces.
type namespaces struct {
	mu    sync.Mutex
	next  int
	alive map[string]bool
}

func newNamespaces() *namespaces {
	return &namespaces{alive: map[string]bool{}}
}

// netns is one throw-away network namespace.
type netns struct {
	name string
	set  *namespaces
}

// Path is the namespace's bind mount, for masqd's --netns.
func (n *netns) Path() string { return filepath.Join("/run/netns", n.name) }

// Add creates a uniquely named namespace with its loopback up.
func (s *namespaces) Add(ctx context.Context) (*netns, error) {
	s.mu.Lock()
	s.next++
	name := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), s.next)
	s.alive[name] = true
	s.mu.Unlock()
	if err := ipCmd(ctx, "netns", "add", name); err != nil {
		s.mu.Lock()
		delete(s.alive, name)
		s.mu.Unlock()
		return nil, err
	}
	n := &netns{name: name, set: s}
	if err := ipCmd(ctx, "-n", name, "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close deletes the namespace. Processes still inside keep it alive until
// they exit; the harness kills its own children first.
func (n *netns) Close() {
	n.set.mu.Lock()
	was := n.set.alive[n.name]
	delete(n.set.alive, n.name)
	n.set.mu.Unlock()
	if was {
		deleteNetns(n.name)
	}
}

// CloseAll deletes every namespace still open.
func (s *namespaces) CloseAll() {
	s.mu.Lock()
	names := make([]string, 0, len(s.alive))
	for name := range s.alive {
		names = append(names, name)
	}
	s.alive = map[string]bool{}
	s.mu.Unlock()
	for _, name := range names {
		deleteNetns(name)
	}
}

func deleteNetns(name string) {
	// Not bound to the run's context: cleanup must also run after a signal.
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: delete namespace %s: %v: %s\n", name, err, bytes.TrimSpace(out))
	}
}

// removeStale deletes namespaces left by harness runs whose process is gone
// (a SIGKILL skips every cleanup). It touches only names with nsPrefix.
func removeStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			deleteNetns(e.Name())
		}
	}
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs fn on an OS thread that has entered the namespace, so sockets fn
// opens and processes it starts live there. The thread moves back before it
// is unlocked; if moving back fails it stays locked and Go discards it when
// the goroutine ends, so no goroutine ever runs in the wrong namespace.
func (n *netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer back.Close()
		target, err := os.Open(n.Path())
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", n.name, err)
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := setns(back); err != nil {
			errc <- fmt.Errorf("leave namespace %s: %w", n.name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// Sysctl sets a sysctl of the namespace (net.* entries are per namespace).
func (n *netns) Sysctl(ctx context.Context, key, value string) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", n.name, "sysctl", "-qw", key+"="+value).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl %s in %s: %w: %s", key, n.name, err, bytes.TrimSpace(out))
	}
	return nil
}
