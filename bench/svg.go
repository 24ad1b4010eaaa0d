package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// series is one line of a chart: points (x, y) with optional error bars.
type series struct {
	Name   string
	Color  string
	Points []point
}

type point struct {
	X, Y, Lo, Hi float64
}

// chart is a line chart with logarithmic axes, drawn as SVG by hand so the
// harness needs no plotting library.
type chart struct {
	Title, XLabel, YLabel string
	Series                []series
}

const (
	chartW, chartH                     = 760, 460
	padLeft, padRight, padTop, padBott = 80, 200, 50, 60
)

// SVG renders the chart. Points with non-positive values are skipped, since
// both axes are logarithmic.
func (c chart) SVG() string {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.X <= 0 || p.Y <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, math.Min(p.Y, positive(p.Lo, p.Y))), math.Max(ymax, math.Max(p.Y, p.Hi))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", padLeft, html.EscapeString(c.Title))
	if math.IsInf(xmin, 1) {
		b.WriteString(`<text x="100" y="200">no data</text></svg>` + "\n")
		return b.String()
	}
	// Whole decades on both axes.
	lx0, lx1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if lx1 == lx0 {
		lx1++
	}
	if ly1 == ly0 {
		ly1++
	}
	pw, ph := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBott)
	px := func(x float64) float64 { return padLeft + (math.Log10(x)-lx0)/(lx1-lx0)*pw }
	py := func(y float64) float64 { return padTop + ph - (math.Log10(y)-ly0)/(ly1-ly0)*ph }

	for d := lx0; d <= lx1; d++ {
		x := px(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, padTop, x, padTop+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, padTop+ph+18, decade(d))
	}
	for d := ly0; d <= ly1; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padLeft, y, padLeft+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padLeft-6, y+4, decade(d))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", padLeft, padTop, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padLeft+pw/2, chartH-18, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(22 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padTop+ph/2, html.EscapeString(c.YLabel))

	for i, s := range c.Series {
		var pts []string
		for _, p := range s.Points {
			if p.X <= 0 || p.Y <= 0 {
				continue
			}
			x, y := px(p.X), py(p.Y)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			if p.Lo > 0 && p.Hi > 0 {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, py(p.Lo), x, py(p.Hi), s.Color)
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x, y, s.Color)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.Color, strings.Join(pts, " "))
		ly := padTop + 10 + 22*i
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", padLeft+pw+14, ly, padLeft+pw+38, ly, s.Color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", padLeft+pw+44, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func positive(v, fallback float64) float64 {
	if v > 0 {
		return v
	}
	return fallback
}

// decade labels 10^d readably: 0.01, 0.1, 1, 10, …, 1k, 10k, 100k, 1M.
func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", v)
	}
}
