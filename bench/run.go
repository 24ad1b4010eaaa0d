package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is what one process cost, measured from outside.
type usage struct {
	Wall      time.Duration // fork to exit
	CPU       time.Duration // user + system
	MaxRSSKiB int64
}

// runTimed runs argv to completion, inside ns when ns is not nil, with its
// stdin read from the file stdin when that is not empty. The clock starts
// just before the fork and stops when the process has been reaped.
func runTimed(ctx context.Context, ns *netns, stdin string, argv ...string) (usage, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return usage{}, fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var start time.Time
	startIn := func() error {
		start = time.Now()
		return cmd.Start()
	}
	var err error
	if ns != nil {
		err = ns.Do(startIn)
	} else {
		err = startIn()
	}
	if err != nil {
		return usage{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	err = cmd.Wait()
	wall := time.Since(start)
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(out.String(), 600))
	}
	u := usage{Wall: wall, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSSKiB = ru.Maxrss
	}
	return u, nil
}

// runner runs a command as runTimed does.
type runner func(ctx context.Context, ns *netns, stdin string, argv ...string) (usage, error)

// runPeak runs argv under GNU time and returns its peak RSS; its wall time
// includes time's own fork and is not a figure to report. The harness
// cannot take the peak from its own wait4: Go starts children with vfork,
// so a child's maxrss counts the harness's memory until the exec, which at
// 1,000,000 CIDRs is hundreds of MiB of inputs.
func runPeak(ctx context.Context, ns *netns, stdin string, argv ...string) (usage, error) {
	f, err := os.CreateTemp("", "masqd-bench-rss-")
	if err != nil {
		return usage{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	u, err := runTimed(ctx, ns, stdin, append([]string{"/usr/bin/time", "-f", "%M", "-o", f.Name()}, argv...)...)
	if err != nil {
		return u, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return u, err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return u, fmt.Errorf("no peak RSS from /usr/bin/time for %s", argv[0])
	}
	if u.MaxRSSKiB, err = strconv.ParseInt(fields[len(fields)-1], 10, 64); err != nil {
		return u, fmt.Errorf("peak RSS from /usr/bin/time for %s: %w", argv[0], err)
	}
	return u, nil
}

// output runs argv (inside ns when not nil) and returns its stdout.
func output(ctx context.Context, ns *netns, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var err error
	if ns != nil {
		err = ns.Do(cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(stderr.String(), 600))
	}
	return stdout.Bytes(), nil
}

// tail returns the last max bytes of s, trimmed.
func tail(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
