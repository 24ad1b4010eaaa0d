package main

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want stat
	}{
		{"empty", nil, stat{}},
		{"one", []float64{4}, stat{Med: 4, Min: 4, Max: 4, N: 1}},
		{"odd count takes the middle", []float64{9, 1, 5}, stat{Med: 5, Min: 1, Max: 9, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 3, 10}, stat{Med: 3.5, Min: 1, Max: 10, N: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []float64{3, 1, 2}
	summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("summarize reordered its input: %v", in)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 … 1, unsorted on purpose
	}
	tests := []struct {
		name string
		in   []float64
		p    float64
		want float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"small p is the min", hundred, 0.1, 1},
		{"p99 of three is the max", []float64{1, 2, 3}, 99, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(p%g) = %g, want %g", tt.p, got, tt.want)
			}
		})
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile of nothing = %g, want NaN", got)
	}
}

func TestRatiosPairByRepetition(t *testing.T) {
	got := ratios([]float64{2, 9, 4}, []float64{4, 3, 0})
	want := []float64{0.5, 3} // a zero denominator is dropped
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ratios = %v, want %v", got, want)
	}
}
