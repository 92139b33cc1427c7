// Package scalechart reads the text `go test -bench` writes (BenchmarkScale's, test/e2e) and
// draws it as an SVG bar chart: one group per case, the per-pod edit→ready with its phases
// stacked beside the all-ready bar. It reads only its own input: no cluster, no clock.
package scalechart

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Result is one benchmark line: its name as printed (with the -GOMAXPROCS suffix), its b.N and
// its metrics by unit.
type Result struct {
	Name    string
	N       int
	Metrics map[string]float64
}

// Run is one file of `go test -bench` output: its results in order, the "cpu:" line and the
// lines starting with "#" (the header a person wrote around the run: date, load, commit).
type Run struct {
	CPU      string
	Comments []string
	Results  []Result
}

// maxValue bounds a metric: far above any time or size a benchmark reports, far below overflow.
const maxValue = 1e12

// Parse reads go test -bench output. Lines that are not results (PASS, logs, goos:) are
// skipped; a result line whose metrics do not read as value-unit pairs is an error naming it.
func Parse(r io.Reader) (Run, error) {
	var run Run
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			run.Comments = append(run.Comments, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case strings.HasPrefix(line, "cpu:"):
			run.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu:"))
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			if len(f) < 2 {
				continue // a name alone: a parent of sub-benchmarks, or one that failed
			}
			iters, err := strconv.Atoi(f[1])
			if err != nil {
				continue // "--- FAIL", "--- SKIP" and the like after the name
			}
			if len(f)%2 != 0 {
				return run, fmt.Errorf("line %d: %s: the metrics are not value-unit pairs: %q", n, f[0], strings.Join(f[2:], " "))
			}
			res := Result{Name: f[0], N: iters, Metrics: map[string]float64{}}
			for i := 2; i < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					return run, fmt.Errorf("line %d: %s: %s %q is not a number", n, f[0], f[i+1], f[i])
				}
				// A chart's axis must be finite and start at 0: a sum of such values could
				// overflow to +Inf (the grid would never end) and a negative bar has no height.
				if v < 0 || v > maxValue {
					return run, fmt.Errorf("line %d: %s: %s %q is out of a chart's range (0 to %g)", n, f[0], f[i+1], f[i], maxValue)
				}
				res.Metrics[f[i+1]] = v
			}
			run.Results = append(run.Results, res)
		}
	}
	if err := sc.Err(); err != nil {
		return run, err
	}
	if len(run.Results) == 0 {
		return run, fmt.Errorf("no benchmark results: give the output of go test -bench (lines starting with Benchmark)")
	}
	return run, nil
}

// The metrics a case needs (BenchmarkScale's names), and the phases stacked, bottom up, as
// they happen in an edit (other, between the build and the ship, is the debounce, the wait
// for a build slot, reading and hashing the binary, the pod's queue and the patch).
const (
	EachPod  = "edit-to-ready-ms"
	AllReady = "all-ready-ms"
)

var phases = []struct{ unit, label, colour string }{
	{"build-ms", "build", "#264653"},
	{"other-ms", "other (debounce, read, queue, patch)", "#8d99ae"},
	{"ship-ms", "ship", "#2a9d8f"},
	{"restart-ms", "restart", "#e9c46a"},
	{"ready-ms", "ready (probe)", "#f4a261"},
}

const allColour = "#e76f51"

// Label turns a result's name into the case it measured, one line per level:
// "BenchmarkScale/services=3/replicas=10-2" is ["3 services", "× 10 replicas"], and
// "BenchmarkScale/pods=1-2" is ["1 pod"].
func Label(name string) []string {
	name = strings.TrimPrefix(name, "Benchmark")
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 {
		parts = parts[1:] // the benchmark's own name is the chart's title
	}
	for i, p := range parts {
		if k, v, ok := strings.Cut(p, "="); ok {
			if v == "1" {
				k = strings.TrimSuffix(k, "s") // 1 pod, 1 replica
			}
			p = v + " " + k
		}
		if i > 0 {
			p = "× " + p
		}
		parts[i] = p
	}
	return parts
}

// SVG draws run's results: per case, a bar of the per-pod phases' medians stacked (with a
// mark at the per-pod edit→ready median, which they need not add up to) and a bar of the
// all-ready median, in seconds on a linear scale, under title and the run's own header. A
// result without the metrics is an error naming it.
func SVG(w io.Writer, run Run, title string) error {
	hi := 0.0
	for _, r := range run.Results {
		for _, u := range []string{EachPod, AllReady} {
			if _, ok := r.Metrics[u]; !ok {
				return fmt.Errorf("%s has no %s: is it BenchmarkScale's output?", r.Name, u)
			}
		}
		stack := 0.0
		for _, p := range phases {
			stack += r.Metrics[p.unit]
		}
		hi = max(hi, r.Metrics[EachPod], r.Metrics[AllReady], stack)
	}
	step := tick(hi)
	top := math.Ceil(hi/step) * step
	if top == 0 {
		top = step
	}

	const (
		left, right, bar, gap, group = 70, 30, 38, 10, 150
		plotH                        = 360
	)
	width := max(left+group*len(run.Results)+right, 720)
	var subtitle []string
	for _, c := range run.Comments {
		subtitle = append(subtitle, wrap(c, (width-left-right)/7)...) // ~7 px a character at 12 px
	}
	if run.CPU != "" {
		subtitle = append(subtitle, "cpu: "+run.CPU)
	}
	head := 34 + 16*len(subtitle) + 60 // title, subtitle lines, legend
	height := head + plotH + 70
	y := func(ms float64) float64 { return float64(head) + plotH*(1-ms/top) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, XMLText(title))
	for i, s := range subtitle {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", left, 40+16*i, XMLText(s))
	}
	// the legend: the stack's phases, the mark, the all-ready bar
	lx, ly := left, 40+16*len(subtitle)+10
	for _, p := range phases {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, ly, p.colour, lx+16, ly+10, XMLText(p.label))
		lx += 16 + 7*len(p.label) + 14
	}
	ly += 20
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-width="2"/><text x="%d" y="%d">each pod: edit→ready median (the phases are medians too)</text>`+"\n", left, ly+6, left+12, ly+6, left+16, ly+10)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">all pods ready: the slowest pod per edit, median</text>`+"\n", left+400, ly, allColour, left+416, ly+10)

	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
			left, y(v), width-right, y(v), left-6, y(v)+4, secs(v))
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle" fill="#555">seconds (edit saved → new code ready)</text>`+"\n", head+plotH/2, head+plotH/2)
	for i, r := range run.Results {
		x0 := left + group*i + (group-2*bar-gap)/2
		base := 0.0
		for _, p := range phases {
			v := r.Metrics[p.unit]
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s</title></rect>`+"\n",
				x0, y(base+v), bar, y(base)-y(base+v), p.colour, XMLText(p.label), secs(v))
			base += v
		}
		each, all := r.Metrics[EachPod], r.Metrics[AllReady]
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-width="2"/>`+"\n", x0-3, y(each), x0+bar+3, y(each))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="11">%s</text>`+"\n", x0+bar/2, math.Min(y(each), y(base))-5, secs(each))
		x1 := x0 + bar + gap
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>`+"\n", x1, y(all), bar, y(0)-y(all), allColour)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="11" font-weight="bold">%s</text>`+"\n", x1+bar/2, y(all)-5, secs(all))
		cx := left + group*i + group/2
		for j, l := range Label(r.Name) {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", cx, head+plotH+18+15*j, XMLText(l))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#777" font-size="11">%d edits</text>`+"\n", cx, head+plotH+18+15*len(Label(r.Name)), r.N)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks s after commas into lines of at most n characters where it can (a longer
// stretch without a comma stays whole).
func wrap(s string, n int) []string {
	var lines []string
	for utf8.RuneCountInString(s) > n {
		cut, runes := -1, 0
		for i, r := range s {
			if runes++; runes > n {
				break
			}
			if r == ',' {
				cut = i
			}
		}
		if cut < 0 {
			break
		}
		lines = append(lines, s[:cut+1])
		s = strings.TrimSpace(s[cut+1:])
	}
	return append(lines, s)
}

// tick is a step for the axis of values up to hi: 1, 2 or 5 times a power of ten, 4 to 10 steps.
func tick(hi float64) float64 {
	if hi <= 0 {
		return 1000
	}
	p := math.Pow(10, math.Floor(math.Log10(hi)))
	for _, m := range []float64{0.1, 0.2, 0.5, 1, 2, 5} {
		if hi/(m*p) <= 10 {
			return m * p
		}
	}
	return 10 * p
}

// secs writes milliseconds as seconds, with as many decimals as the value needs to read.
func secs(ms float64) string {
	switch {
	case ms == 0:
		return "0 s"
	case ms < 100:
		return fmt.Sprintf("%.3f s", ms/1000)
	case ms < 10000:
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

// XMLText makes s XML text: escaped, and the characters XML cannot hold (control characters,
// bad UTF-8) shown as U+FFFD. Package output's chart writes its labels with it too.
func XMLText(s string) string {
	return html.EscapeString(strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			return r
		}
		return utf8.RuneError
	}, s))
}
