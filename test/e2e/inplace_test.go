package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// TestInPlaceWriteWithPause writes the config the way `printf > file` with a
// slow command does: truncate, a pause, then the content. The empty file in
// between would mean the defaults; they must never reach the kernel.
// Traffic to 172.20.0.10 (outside the config's list, inside the defaults')
// stays masqueraded through the pause, and the content then applies.
func TestInPlaceWriteWithPause(t *testing.T) {
	b := newBed(t)
	cfg := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	p, url := startAgent(t, b, cfg)
	eventually(t, 5*time.Second, "ready at start", statusIs(url+"/readyz", 200))
	checkTraffic(t, b, expect{"172.20.0.10": true})

	f, err := os.OpenFile(cfg, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eventually(t, settle, "the agent holding the emptied file",
		logHas(t, p, 1, "config file emptied in place; waiting for its content, or for the next resync if it stays empty", "config", cfg))
	// The pause: a second of traffic, every connection still masqueraded.
	ctx := context.Background()
	probes := 0
	for start := time.Now(); time.Since(start) < time.Second; probes++ {
		got, err := b.SourceSeen(ctx, netip.MustParseAddr("172.20.0.10"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Addr() != testbed.NodeIP4 {
			t.Fatalf("probe %d during the pause: source %s, want the node's: the empty file's defaults were applied", probes, got.Addr())
		}
	}
	_, metrics, err := httpBody(p.metrics + "/metrics")
	if err != nil || !strings.Contains(metrics, `masqd_config_loads_total{result="changed"} 1`+"\n") {
		t.Errorf("a config was loaded during the pause (%v):\n%s", err, grepLines(metrics, "masqd_config_loads_total"))
	}
	if _, err := f.WriteString("nonMasqueradeCIDRs: [10.0.0.0/8, 172.16.0.0/12]\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the content applied: %v after the write", eventually(t, settle, "the content after the pause applied", sourceIs(b, "172.20.0.10", testbed.PodIP4)))
	t.Logf("%d connections during the 1 s pause, all masqueraded", probes)
}

// grepLines returns the lines of s that contain sub, for failure messages.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return fmt.Sprint(out)
}
