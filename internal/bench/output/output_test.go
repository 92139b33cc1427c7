package output

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/testutil"
)

func TestGolden(t *testing.T) {
	rs := []bench.Record{
		{Workload: "hello", Strategy: bench.Hotpod, Link: "direct", Iterations: 5, MedianMS: 512, MinMS: 480, MaxMS: 600, BytesSent: 5808367, HotpodMS: 500, AppMS: 490,
			Phases: &bench.Phases{Debounce: 30, Build: 390, Read: 4.2, Patch: 3.1, Ship: 21, Restart: 9.5, Ready: 30}},
		{Workload: "hello", Strategy: bench.Image, Link: "direct", Iterations: 5, MedianMS: 1450, MinMS: 1300, MaxMS: 2100, BytesSent: 2650000, AppMS: 1400},
		{Workload: "hello", Strategy: bench.InCluster, Link: "direct", Iterations: 5, MedianMS: 450, MinMS: 440, MaxMS: 500, BytesSent: 3584, AppMS: 430},
		{Workload: "hello", Strategy: bench.UPX, Link: "direct", Skipped: "no upx binary on PATH"},
		{Workload: "seedapp", Strategy: bench.Hotpod, Link: "20mbit:30ms", Iterations: 5, MedianMS: 2400, MinMS: 2100, MaxMS: 2900, BytesSent: 900000},
	}
	for name, write := range map[string]func(*bytes.Buffer){
		"table.md":  func(b *bytes.Buffer) { Markdown(b, rs) },
		"chart.svg": func(b *bytes.Buffer) { SVG(b, rs) },
		"records.json": func(b *bytes.Buffer) {
			if err := JSON(b, rs); err != nil {
				t.Fatal(err)
			}
		},
	} {
		var b bytes.Buffer
		write(&b)
		testutil.Golden(t, filepath.Join("testdata", name), b.Bytes())
	}
}

// A workload is named after its directory, which may hold what XML cannot: the chart stays XML.
func TestSVGOfAnyName(t *testing.T) {
	var b bytes.Buffer
	SVG(&b, []bench.Record{{Workload: "a\x01<b>&\xff", Strategy: bench.Hotpod, Link: "direct", Iterations: 1, MedianMS: 500, MinMS: 400, MaxMS: 600}})
	d := xml.NewDecoder(&b)
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the chart is not XML: %v", err)
		}
	}
}
