package e2e

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

var configInfoRE = regexp.MustCompile(`(?m)^masqd_config_info\{hash="([0-9a-f]+)"\} 1$`)

// configHash returns the hash an agent reports in masqd_config_info.
func configHash(p *agentProc) (string, error) {
	_, body, err := httpBody(p.metrics + "/metrics")
	if err != nil {
		return "", err
	}
	m := configInfoRE.FindAllStringSubmatch(body, -1)
	if len(m) != 1 {
		return "", fmt.Errorf("%d masqd_config_info samples, want 1", len(m))
	}
	return m[0][1], nil
}

func hashIs(p *agentProc, want string) func() error {
	return func() error {
		got, err := configHash(p)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("masqd_config_info hash %s, want %s", got, want)
		}
		return nil
	}
}

// TestFleetConfigHash: two nodes with the same config, written
// differently, report the same hash, the one `masqd check` prints; after a
// change to one node's config the hashes differ until the other has it too.
func TestFleetConfigHash(t *testing.T) {
	b1, b2 := newBed(t), newBed(t)
	cfg1 := writeConfig(t, "nonMasqueradeCIDRs: [10.0.0.0/8, 192.168.0.0/16]\n")
	cfg2 := writeConfig(t, "# node two\nnonMasqueradeCIDRs:\n  - 192.168.0.0/16\n  - 10.0.0.0/8\n")
	check := masqd(t, b1, "check", "--config", cfg1)
	m := regexp.MustCompile(`config hash: ([0-9a-f]+)`).FindStringSubmatch(check)
	if m == nil {
		t.Fatalf("masqd check prints no config hash:\n%s", check)
	}
	want := m[1]
	// Node-specific flags differ: node two translates to its own address.
	p1, url1 := startAgent(t, b1, cfg1)
	p2, url2 := startAgent(t, b2, cfg2, "--snat-address=100.115.0.1")
	eventually(t, 5*time.Second, "node one ready", statusIs(url1+"/readyz", 200))
	eventually(t, 5*time.Second, "node two ready", statusIs(url2+"/readyz", 200))
	eventually(t, settle, "node one reports the checked hash", hashIs(p1, want))
	eventually(t, settle, "node two reports the same hash", hashIs(p2, want))

	// A change reaches node one first.
	replaceFile(t, cfg1, "nonMasqueradeCIDRs: [10.0.0.0/8]\n")
	eventually(t, settle, "node one's hash moves", func() error {
		h, err := configHash(p1)
		if err == nil && h == want {
			err = fmt.Errorf("still %s", h)
		}
		return err
	})
	changed, _ := configHash(p1)
	if h, _ := configHash(p2); h != want {
		t.Errorf("node two's hash moved to %s without a change", h)
	}
	replaceFile(t, cfg2, "nonMasqueradeCIDRs:\n- 10.0.0.0/8\n")
	t.Logf("node two converged: %v", eventually(t, settle, "node two converges", hashIs(p2, changed)))

	// Each sync log names the hash it applied. (The metric moves just
	// before the line is written.)
	for _, p := range []*agentProc{p1, p2} {
		eventually(t, settle, "the sync log of "+p.log+" names hash "+changed, logHas(t, p, 1, "synced", "config_hash", changed))
	}
}
