package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// svgElements decodes the chart and counts its elements by name.
func svgElements(t *testing.T, svg string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return counts
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
}

func TestChartSVG(t *testing.T) {
	c := chart{Title: "a <title> & more", XLabel: "N", YLabel: "ms", Series: []series{
		{Name: "masqd", Color: "#000", Points: []point{{X: 64, Y: 10, Lo: 9, Hi: 11}, {X: 100000, Y: 300, Lo: 280, Hi: 320}}},
		{Name: "nft -f", Color: "#00f", Points: []point{{X: 64, Y: 8}, {X: 1000, Y: 0}, {X: 100000, Y: 700}}},
	}}
	svg := c.SVG()
	got := svgElements(t, svg)
	if got["polyline"] != 2 {
		t.Errorf("polylines = %d, want one per series (2)", got["polyline"])
	}
	if got["circle"] != 4 {
		t.Errorf("points drawn = %d, want 4 (a zero value cannot go on a log axis)", got["circle"])
	}
	for _, label := range []string{">masqd<", ">nft -f<", "&lt;title&gt; &amp; more", ">10<", ">100k<"} {
		if !strings.Contains(svg, label) {
			t.Errorf("chart lacks %q", label)
		}
	}
}

func TestChartWithoutData(t *testing.T) {
	got := svgElements(t, chart{Title: "empty"}.SVG())
	if got["polyline"] != 0 || got["svg"] != 1 {
		t.Errorf("empty chart elements = %v", got)
	}
}

func TestDecadeLabels(t *testing.T) {
	for d, want := range map[float64]string{-1: "0.1", 0: "1", 2: "100", 3: "1k", 5: "100k", 6: "1M"} {
		if got := decade(d); got != want {
			t.Errorf("decade(%g) = %q, want %q", d, got, want)
		}
	}
}
