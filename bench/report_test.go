package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func s(med float64) stat { return stat{Med: med, Min: med * 0.9, Max: med * 1.1, N: 3} }

// sampleResults is a run in which some targets are met and some missed.
func sampleResults() *results {
	p := newPlan(true)
	return &results{
		Plan: p, Took: 90 * time.Second,
		Apply: []applyRow{
			{N: 64, Wall: map[string]stat{toolMasqd: s(5), toolNft: s(4), toolIptNft: s(6)}, Ratio: map[string]stat{toolNft: s(1.25), toolIptNft: s(0.8)},
				CPU: map[string]stat{toolMasqd: s(3), toolNft: s(2)}, RSS: map[string]stat{toolMasqd: s(12), toolNft: s(8)}},
			{N: 10000, Wall: map[string]stat{toolMasqd: s(30), toolNft: s(75), toolIptNft: s(200)}, Ratio: map[string]stat{toolNft: s(0.4), toolIptNft: s(0.15)},
				CPU: map[string]stat{toolMasqd: s(20), toolNft: s(60)}, RSS: map[string]stat{toolMasqd: s(20), toolNft: s(30)}, Verified: true},
			{N: 100000, Wall: map[string]stat{toolMasqd: s(600), toolNft: s(700), toolIptNft: s(1700)}, Ratio: map[string]stat{toolNft: s(0.86), toolIptNft: s(0.35)},
				CPU: map[string]stat{toolMasqd: s(400), toolNft: s(650)}, RSS: map[string]stat{toolMasqd: s(80), toolNft: s(90)}},
		},
		Resync: []resyncRow{{N: 100000, Took: s(0.08), CPUPerTick: 0.2, Ticks: 5, Rewrite: map[string]stat{toolIptNft: s(1700), toolNft + " (whole table)": s(1400)}}},
		Change: []changeRow{
			{N: 100000, Format: formatJSON, Op: "add", Latency: s(45), Took: s(3)},
			{N: 100000, Format: formatYAML, Op: "add", Latency: s(350), Took: s(3)},
		},
		SetRewrite: []setRewriteRow{{N: 100000, Wall: s(800)}},
		Latency:    []latencyRow{{N: 64, Format: formatJSON, Changes: 100, Min: 1, P50: 2, P99: 5, Max: 7, TookP50: 0.5, TookP99: 1}},
		Packet: []packetRow{
			{N: 64, Rate: map[string]stat{toolMasqd: s(5000), toolIptNft: s(5000)}, Masqueraded: true},
			{N: 10000, Rate: map[string]stat{toolMasqd: s(4900), toolIptNft: s(1000)}, Masqueraded: true},
		},
		PacketRatio: map[string]map[int]stat{toolMasqd: {64: s(1), 10000: s(0.98)}, toolIptNft: {64: s(1), 10000: s(0.2)}},
		Idle:        []idleRow{{N: 100000, Window: 10 * time.Second, CPUStat: 10 * time.Millisecond, CPUSched: 4 * time.Millisecond, RSS: 40}},
		Restart: []restartRow{{N: 100000,
			Wall:  map[string]stat{toolOnceInSync: s(600), toolListSet: s(800), toolAgentReady: s(700), toolIptCycle: s(1700)},
			CPU:   map[string]stat{toolOnceInSync: s(450), toolListSet: s(500)},
			RSS:   map[string]stat{toolOnceInSync: s(40), toolAgentReady: s(60)},
			Ratio: s(0.75), Repair: s(450), RepairTook: s(420)}},
		Conntrack: &conntrackResult{N: 100000, Entries: 10000, Moved: 10, Live: 10000,
			Rows: []conntrackRow{
				{Op: "leaves the list", Took: []float64{12, 14, 60}, Sync: []float64{20, 22, 24}, Latency: []float64{120, 130, 140}, Examined: []float64{5005, 5005, 5005}, Removed: 10},
				{Op: "back in the list", Took: []float64{11, 13, 15}, Sync: []float64{14, 15, 16}, Latency: []float64{110, 120, 130}, Examined: []float64{5005, 5005, 5005}, Removed: 10},
			},
			Idle: conntrackIdle{Passes: 5, Took: s(0.2), Removed: [2]int{60, 60}, Live: [2]int{10001, 10002}}},
		Skipped: []string{"iptables-legacy-restore: not usable"},
	}
}

func TestReportJudgesTargets(t *testing.T) {
	md := renderReport(sampleResults(), "bench-apply.svg")
	for _, want := range []string{
		"| first apply at 10,000 CIDRs, masqd --once / nft -f | ≤ 0.70× | 0.400× | met |",
		"| first apply at 100,000 CIDRs, masqd --once / nft -f | ≤ 0.50× | 0.860× | **missed** |",
		"| no-change resync at 100,000 (agent's `took`) | < 1 ms | 0.080 ms | met |",
		"file write to kernel (worse of add/remove) | < 40 ms | 45.0 ms | **missed** |",
		"file write to kernel (worse of add/remove) | < 150 ms | 350 ms | **missed** |",
		"| new-connection rate at 10,000 / at 64, masqd | ≥ 0.90× | 0.980× | met |",
		"![First apply time against N](bench-apply.svg)",
		"| restart at 100,000: `masqd --once` in sync / `nft list set` | ≤ 0.50× | 0.750× | **missed** |",
		"| restart at 100,000: agent ready | < 1000 ms | 700 ms | met |",
		"| repair of one foreign element at 100,000 | < 100 ms | 450 ms | **missed** |",
		"| peak RSS at 100,000, `masqd --once` in sync | ≤ 48 MiB | 40.0 MiB | met |",
		"| peak RSS at 100,000, agent restart | ≤ 48 MiB | 60.0 MiB | **missed** |",
		"![Time per CIDR against N, first apply and restart](bench-scaling.svg)",
		"| one CIDR at 100,000 with 10,000 live UDP entries: conntrack reconcile (the sync's `conntrack.took`, p50 / p90 of 6 changes) | < 50 ms | 13.0 / 60.0 ms | **missed** |",
		"| no-change resync at 100,000 with 10,000 live entries: conntrack work | none | 0 of 5 passes; removed_total 60 → 60 | met |",
		"| `10.0.0.0/28` leaves the list | 3 | **14.0** / 60.0 | 5,005 | 10 |",
		"- iptables-legacy-restore: not usable",
		"**Closing note on the misses.**",
		"- *first apply at 100,000 CIDRs, masqd --once / nft -f* (0.860×, target ≤ 0.50×): At 100,000 CIDRs masqd --once used 400 ms of CPU",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestReportOfAnEmptyRun(t *testing.T) {
	md := renderReport(&results{Plan: newPlan(false), Failed: []string{"apply: masqd missing"}}, "c.svg")
	if strings.Count(md, "Not measured in this run.") != 8 {
		t.Errorf("an empty run should say so in each of the eight sections:\n%s", md)
	}
	if !strings.Contains(md, "- failed: apply: masqd missing") {
		t.Errorf("report does not list the failure:\n%s", md)
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	out, chartPath := filepath.Join(dir, "docs", "benchmarks.md"), filepath.Join(dir, "docs", "bench-apply.svg")
	if err := writeReport(sampleResults(), out, chartPath); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "(bench-apply.svg)") {
		t.Errorf("report links the chart by a path other than its sibling name")
	}
	svg, err := os.ReadFile(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := svgElements(t, string(svg))["polyline"]; got != 3 {
		t.Errorf("chart has %d lines, want one per tool measured (3)", got)
	}
	scaling, err := os.ReadFile(filepath.Join(dir, "docs", "bench-scaling.svg"))
	if err != nil {
		t.Fatal(err)
	}
	// masqd and nft -f applying, and the four restart tools.
	if got := svgElements(t, string(scaling))["polyline"]; got != 6 {
		t.Errorf("scaling chart has %d lines, want 6", got)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{64: "64", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
