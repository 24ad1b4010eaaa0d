package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logLine is one line of masqd's JSON log.
type logLine struct {
	Msg    string
	Level  string
	At     time.Time // the line's own timestamp, or when it was read
	Took   time.Duration
	Reason string
	Op     string
	Raw    string
	// Conntrack is the sync's conntrack reconcile, nil when the line has
	// no "conntrack" field (no verdict changed, so none was made).
	Conntrack *ctLog
}

// ctLog is the "conntrack" field of a sync's log line.
type ctLog struct {
	Took              time.Duration
	Examined, Removed int
}

// parseLogLine decodes a zap JSON line. zap's encoders write the time as
// epoch seconds (a number) or as ISO 8601 text, and durations as seconds (a
// number) or as Go duration text; both forms are accepted. ok is false for
// lines that are not JSON objects.
func parseLogLine(b []byte, read time.Time) (logLine, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return logLine{}, false
	}
	l := logLine{At: read, Raw: string(b)}
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(m[key], &s)
		return s
	}
	l.Msg, l.Level, l.Reason, l.Op = str("msg"), str("level"), str("reason"), str("op")
	if t, ok := parseTime(m["ts"]); ok {
		l.At = t
	}
	if d, ok := parseDuration(m["took"]); ok {
		l.Took = d
	}
	if raw, ok := m["conntrack"]; ok {
		var ct struct {
			Took              json.RawMessage
			Examined, Removed int
		}
		if json.Unmarshal(raw, &ct) == nil {
			l.Conntrack = &ctLog{Examined: ct.Examined, Removed: ct.Removed}
			l.Conntrack.Took, _ = parseDuration(ct.Took)
		}
	}
	return l, true
}

func parseTime(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if json.Unmarshal(raw, &f) == nil && f > 0 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseDuration(raw json.RawMessage) (time.Duration, bool) {
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return time.Duration(f * float64(time.Second)), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// agent is a running masqd agent whose log the harness reads.
type agent struct {
	cmd   *exec.Cmd
	lines chan logLine
	done  chan struct{} // closed when both output streams have ended

	mu   sync.Mutex
	last []string // the last raw lines, for error messages
}

// agentOptions are the flags a benchmark gives the agent.
type agentOptions struct {
	bin    string
	config string
	ns     *netns
	// metrics starts the agent inside ns, with its metrics and health
	// listeners on ns's loopback (metricsAddr), where scrape reads them.
	metrics bool
}

// metricsAddr is where an agent started with metrics serves them, on the
// loopback of its own namespace.
const metricsAddr = "127.0.0.1:9100"

// startAgent runs masqd in agent mode on ns with JSON logs at debug level.
// Without o.metrics it has no metrics listener and serves health on a free
// port of the host's loopback.
func startAgent(o agentOptions) (*agent, error) {
	metrics, health := "0", "127.0.0.1:9101"
	if o.metrics {
		metrics = metricsAddr
	} else {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		health = "127.0.0.1:" + strconv.Itoa(port)
	}
	cmd := exec.Command(o.bin,
		"--config", o.config,
		"--netns", o.ns.Path(),
		"--log-format=json", "--log-level=debug",
		"--metrics-bind-address="+metrics,
		"--health-bind-address="+health)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := cmd.Start
	if o.metrics {
		start = func() error { return o.ns.Do(cmd.Start) }
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	a := &agent{cmd: cmd, lines: make(chan logLine, 1<<14), done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Go(func() { a.read(r) })
	}
	go func() {
		wg.Wait()
		close(a.done)
	}()
	return a, nil
}

func (a *agent) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		now := time.Now()
		a.mu.Lock()
		a.last = append(a.last, sc.Text())
		if len(a.last) > 8 {
			a.last = a.last[1:]
		}
		a.mu.Unlock()
		if l, ok := parseLogLine(sc.Bytes(), now); ok {
			select {
			case a.lines <- l:
			default: // Nobody is waiting for this many lines; drop.
			}
		}
	}
}

// errAgentExited says the agent stopped while the harness waited for a line.
var errAgentExited = errors.New("agent exited")

// next returns the next log line for which match is true, waiting at most
// timeout.
func (a *agent) next(ctx context.Context, timeout time.Duration, match func(logLine) bool) (logLine, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l := <-a.lines:
			if match(l) {
				return l, nil
			}
		case <-a.done:
			// Lines read before the end may still be queued.
			for {
				select {
				case l := <-a.lines:
					if match(l) {
						return l, nil
					}
				default:
					return logLine{}, fmt.Errorf("%w: %s", errAgentExited, a.lastLines())
				}
			}
		case <-t.C:
			return logLine{}, fmt.Errorf("no matching log line within %s; last lines: %s", timeout, a.lastLines())
		case <-ctx.Done():
			return logLine{}, ctx.Err()
		}
	}
}

// drain discards queued lines.
func (a *agent) drain() {
	for {
		select {
		case <-a.lines:
		default:
			return
		}
	}
}

func (a *agent) lastLines() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return tail(strings.Join(a.last, "\n"), 1200)
}

// stop asks the agent to exit and kills it if it has not within 5 s.
func (a *agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() {
		_ = a.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = a.cmd.Process.Kill()
		<-exited
	}
}

func isSynced(l logLine) bool { return l.Msg == "synced" }

// isInSync matches a sync that found the kernel as wanted: "in sync;
// nothing changed", or "first sync found the table in sync; nothing
// changed" when the agent starts over a table already in place.
func isInSync(l logLine) bool { return strings.HasSuffix(l.Msg, "in sync; nothing changed") }

func isResyncPass(l logLine) bool {
	return isInSync(l) && (l.Reason == "" || strings.Contains(l.Reason, "resync"))
}

func isFilePass(l logLine) bool {
	return isInSync(l) && strings.Contains(l.Reason, "file")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procCPU is a process's CPU time: from /proc/PID/stat (utime+stime, in
// clock ticks of 10 ms) and, to the nanosecond, summed over its threads'
// /proc/PID/task/TID/schedstat.
type procCPU struct {
	Stat, Sched time.Duration
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func readProcCPU(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, fmt.Errorf("read cpu time: %w", err)
	}
	// Fields after the command name, which ends with the last ")".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("read cpu time: short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	c := procCPU{Stat: time.Duration(utime+stime) * clockTick}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		s, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(s))
		if len(f) == 0 {
			continue
		}
		if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			c.Sched += time.Duration(ns)
		}
	}
	return c, nil
}

// readRSS returns VmRSS and VmHWM (peak) of a process in KiB.
func readRSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak, nil
}
