// Package output writes the bench's records: a JSON array (what --json and docs/bench keep), a
// markdown table, and an SVG bar chart on a log scale.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/bench/scalechart"
)

// JSON writes the records as a JSON array, one object per (workload, strategy, link).
func JSON(w io.Writer, rs []bench.Record) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

// Markdown writes the table: strategy × workload × link, median and range, bytes per edit; then,
// when hotpod reported them, its phases.
func Markdown(w io.Writer, rs []bench.Record) {
	table(w, rs)
	phases(w, rs)
}

func table(w io.Writer, rs []bench.Record) {
	fmt.Fprintln(w, "| workload | link | strategy | edit→ready median | min–max | bytes per edit | hotpod says | app says |")
	fmt.Fprintln(w, "| -------- | ---- | -------- | ----------------: | ------: | -------------: | ----------: | -------: |")
	for _, r := range rs {
		if r.Skipped != "" {
			fmt.Fprintf(w, "| %s | %s | %s | skipped: %s | | | | |\n", r.Workload, r.Link, r.Strategy, r.Skipped)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s–%s | %s | %s | %s |\n", r.Workload, r.Link, r.Strategy,
			secs(r.MedianMS), secs(r.MinMS), secs(r.MaxMS), bytesHuman(r.BytesSent), optSecs(r.HotpodMS), optSecs(r.AppMS))
	}
}

// phases writes where hotpod says the time went, for the records that have phases: each
// phase's median over the edits (the medians need not add up to hotpod's own median); other is
// the debounce, a wait for a build slot and the pod's queue.
func phases(w io.Writer, rs []bench.Record) {
	header := false
	for _, r := range rs {
		p := r.Phases
		if p == nil {
			continue
		}
		if !header {
			fmt.Fprint(w, "\nWhere hotpod says the time went (medians of each phase; other: debounce, build slot, queue):\n\n")
			fmt.Fprintln(w, "| workload | link | strategy | build | read + hash | patch | ship | restart | ready | other |")
			fmt.Fprintln(w, "| -------- | ---- | -------- | ----: | ----------: | ----: | ---: | ------: | ----: | ----: |")
			header = true
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Link, r.Strategy,
			secs(p.Build), ms(p.Read), ms(p.Patch), ms(p.Ship), ms(p.Restart), ms(p.Ready), ms(p.Debounce+p.BuildWait+p.Queue))
	}
}

func ms(v float64) string { return fmt.Sprintf("%.0f ms", v) }

func secs(ms float64) string { return fmt.Sprintf("%.2f s", ms/1000) }

func optSecs(ms float64) string {
	if ms == 0 {
		return "–"
	}
	return secs(ms)
}

func bytesHuman(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// SVG draws one horizontal bar per record (median edit→ready, whiskers min–max), grouped by
// workload and link, on a log scale so a 0.4 s and a 20 s bar both read.
func SVG(w io.Writer, all []bench.Record) {
	var rs []bench.Record
	for _, r := range all {
		if r.Skipped == "" {
			rs = append(rs, r)
		}
	}
	const (
		left, right, row, top = 260, 40, 26, 40
		width                 = 900
	)
	lo, hi := 100.0, 1000.0
	for _, r := range rs {
		if r.MinMS > 0 {
			lo = math.Min(lo, r.MinMS)
		}
		hi = math.Max(hi, r.MaxMS)
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(ms float64) float64 {
		ms = math.Max(ms, lo)
		return left + (width-left-right)*(math.Log10(ms)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	height := top + row*len(rs) + 40
	colours := map[string]string{bench.Hotpod: "#2a9d8f", bench.Full: "#8ab17d", bench.UPX: "#b5c99a", bench.Image: "#e76f51",
		bench.Local: "#999999", bench.GoBuild: "#555555", bench.InCluster: "#e9c46a", bench.DockerVendor: "#9d4edd", bench.DockerVendorW: "#b388eb",
		bench.DockerGocache: "#c77dff"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">edit → new code answering (median, min–max; log scale)</text>`+"\n", left)
	for d := lo; d <= hi; d *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>`+"\n",
			x(d), top-5, x(d), height-35, x(d), height-20, scalechart.XMLText(secs(d)))
	}
	for i, r := range rs {
		y := top + i*row
		colour := colours[r.Strategy]
		if colour == "" {
			colour = "#888"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+15,
			scalechart.XMLText(fmt.Sprintf("%s · %s · %s", r.Workload, r.Link, r.Strategy)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="16" fill="%s"/>`+"\n", left, y+3, x(r.MedianMS)-left, colour)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>`+"\n", x(r.MinMS), y+11, x(r.MaxMS), y+11)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", x(r.MaxMS)+6, y+15, scalechart.XMLText(secs(r.MedianMS)))
	}
	b.WriteString("</svg>\n")
	io.WriteString(w, b.String())
}
