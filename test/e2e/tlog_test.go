package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// cpuTicks returns the user and system CPU time of process pid, in clock
// ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which ends with the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}

type tlogLine struct {
	Event, Proto, Pod, Node, Dst string
	ID                           uint32
}

func readTlog(t *testing.T, path string) []tlogLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []tlogLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var tl tlogLine
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("translation log line %q: %v", l, err)
		}
		out = append(out, tl)
	}
	return out
}

// TestTranslationLog: with --translation-log, 1,000 short masqueraded
// connections from the pod each get a start and an end line naming the pod
// and the node's address and port; exempt connections get none.
func TestTranslationLog(t *testing.T) {
	const translated, exempt = 1000, 100
	b := newBed(t)
	// Closed connections leave conntrack within seconds, so their end
	// events come during the test.
	for _, k := range []string{"time_wait", "close", "fin_wait", "close_wait", "last_ack"} {
		if out, err := b.Exec(t.Context(), b.NodeNS, "sh", "-c", "echo 1 > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_"+k); err != nil {
			t.Fatalf("conntrack timeout %s: %v: %s", k, err, out)
		}
	}
	logPath := filepath.Join(t.TempDir(), "translations.jsonl")
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	p, url := startAgent(t, b, cfg, "--translation-log="+logPath)
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))
	// The log listens once a first connection shows up in it.
	eventually(t, 5*time.Second, "a first line in the translation log", func() error {
		if _, err := b.SourceSeen(t.Context(), netip.MustParseAddr("203.0.113.10")); err != nil {
			return err
		}
		if len(readTlog(t, logPath)) == 0 {
			return fmt.Errorf("no line yet")
		}
		return nil
	})
	first := len(readTlog(t, logPath)) // starts of the warm-up connections

	cpu0, start := cpuTicks(t, p.cmd.Process.Pid), time.Now()
	for i := range translated + exempt {
		dst := "11.11.11.11"
		if i%11 == 0 {
			dst = "10.96.0.10"
		}
		if _, err := b.SourceSeen(t.Context(), netip.MustParseAddr(dst)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	sent := time.Since(start)
	var lines []tlogLine
	eventually(t, 90*time.Second, "an end line for every connection", func() error {
		lines = readTlog(t, logPath)
		ends := 0
		for _, l := range lines {
			if l.Event == "end" && l.Dst == "11.11.11.11:7777" {
				ends++
			}
		}
		if ends < translated {
			return fmt.Errorf("%d end lines to 11.11.11.11, want %d", ends, translated)
		}
		return nil
	})
	cpu := cpuTicks(t, p.cmd.Process.Pid) - cpu0
	t.Logf("%d connections sent in %s; masqd used %d ms of CPU from the first to the last end line (%s), %d lines in all (%d before)",
		translated+exempt, sent.Round(time.Millisecond), cpu*10, time.Since(start).Round(time.Millisecond), len(lines), first)

	starts, ends := map[uint32]tlogLine{}, map[uint32]tlogLine{}
	for _, l := range lines {
		if netip.MustParseAddrPort(l.Pod).Addr() != testbed.PodIP4 || netip.MustParseAddrPort(l.Node).Addr() != testbed.NodeIP4 || l.Proto != "tcp" {
			t.Errorf("unexpected line %+v", l)
		}
		if l.Dst == "10.96.0.10:7777" {
			t.Errorf("a line for an exempt connection: %+v", l)
		}
		map[string]map[uint32]tlogLine{"start": starts, "end": ends}[l.Event][l.ID] = l
	}
	for id, e := range ends {
		if s, ok := starts[id]; !ok || s.Pod != e.Pod || s.Node != e.Node {
			t.Errorf("end %+v has start %+v", e, s)
		}
	}
	for _, m := range []string{`masqd_translation_log_lost_total{where="buffer"}`, `masqd_translation_log_lost_total{where="kernel"}`} {
		if n := metricValue(t, p, m); n != 0 {
			t.Errorf("%s = %v", m, n)
		}
	}
	if n := metricValue(t, p, `masqd_translation_log_lines_total{event="end"}`); int(n) != len(ends) {
		t.Errorf("masqd_translation_log_lines_total{event=\"end\"} = %v, want %d", n, len(ends))
	}
}
