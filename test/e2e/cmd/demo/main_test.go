package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/masqd/masqd/test/e2e/testbed"
)

// TestDemo runs the demo and pins what a newcomer reads: why pods are
// masqueraded, honest labels, and the table shown after the traffic with
// counters that count it.
func TestDemo(t *testing.T) {
	if why := testbed.Skip(); why != "" {
		t.Skip("demo test skipped: " + why)
	}
	bin := os.Getenv("MASQD_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "masqd")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/masqd/masqd/cmd/masqd").CombinedOutput(); err != nil {
			t.Fatalf("build masqd: %v\n%s", err, out)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), &out, bin, false); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"\nWhy masquerade: a pod's address means nothing outside the cluster, so replies could not find their way back; " +
			"for traffic leaving the cluster the node puts its own address in the pod's place, and traffic to the cluster's ranges keeps the pod's address.\n",
		"Every destination is an address of the world namespace the demo made: nothing leaves this machine.\n",
		"a stand-in for an internet address (from a documentation range)",
		"\nEach counter is the number of the connections above that its rule decided: NAT rules see only a connection's first packet.\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "an internet address (a reserved documentation range)") {
		t.Errorf("the demo still calls 203.0.113.10 an internet address:\n%s", text)
	}
	rows, listing, ok := strings.Cut(text, "$ nft list table inet masqd")
	if !ok || !strings.Contains(rows, "DESTINATION") {
		t.Fatalf("the table is not shown after the connections:\n%s", text)
	}
	// One connection per masqueraded row.
	m := regexp.MustCompile(`counter packets (\d+) bytes \d+ masquerade`).FindStringSubmatch(listing)
	if m == nil || m[1] == "0" {
		t.Errorf("the masquerade rule's counter is missing or 0 after the traffic:\n%s", listing)
	}
	if n := strings.Count(rows, "yes (node IP)"); m != nil && m[1] != strconv.Itoa(n) {
		t.Errorf("the masquerade counter says %s connections, the rows %d:\n%s", m[1], n, text)
	}
}
