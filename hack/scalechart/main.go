// scalechart draws BenchmarkScale's output (the text `go test -bench Scale` writes, with the
// "#" header lines a person adds: date, load, commit) as an SVG bar chart, for docs/bench.
//
//	go run ./hack/scalechart -title '…' docs/bench/scale-2026-12-02b.txt > docs/bench/scale-2026-12-02b.svg
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/hotpod/hotpod/internal/bench/scalechart"
)

func main() {
	title := flag.String("title", "BenchmarkScale: edit → ready", "the chart's title")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: scalechart [-title T] BENCH-OUTPUT.txt > CHART.svg")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *title); err != nil {
		fmt.Fprintln(os.Stderr, "scalechart:", err)
		os.Exit(1)
	}
}

func run(path, title string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := scalechart.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return scalechart.SVG(os.Stdout, r, title)
}
