package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/testutil"
)

func TestParseLink(t *testing.T) {
	for in, want := range map[string]Link{
		"direct":      {},
		"20mbit:30ms": {Rate: "20mbit", Delay: 30 * time.Millisecond},
		"500kbit:0ms": {Rate: "500kbit"},
	} {
		got, err := ParseLink(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseLink(%q) = %+v, %v (String %q)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "20mbit", "fast:1ms", "20mbit:30", "-1mbit:3ms"} {
		if _, err := ParseLink(bad); err == nil {
			t.Errorf("ParseLink(%q) accepted", bad)
		}
	}
}

func TestSummarizeAndSane(t *testing.T) {
	r := summarize("hello", Hotpod, "direct", []sample{
		{ms: 500, hotpodMS: 480, appMS: 470, bytes: 100},
		{ms: 300, hotpodMS: 290, appMS: 280, bytes: 300},
		{ms: 400, hotpodMS: 380, appMS: 370, bytes: 200},
	})
	want := Record{Workload: "hello", Strategy: Hotpod, Link: "direct", Iterations: 3, MedianMS: 400, MinMS: 300,
		MaxMS: 500, BytesSent: 200, HotpodMS: 380, AppMS: 370}
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	if err := Sane([]Record{r}, 3); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Record{
		{Iterations: 2, MedianMS: 1, MinMS: 1, MaxMS: 1, BytesSent: 1},
		{Iterations: 3, MedianMS: 0, MinMS: 0, MaxMS: 1, BytesSent: 1},
		{Iterations: 3, MedianMS: 1, MinMS: 1, MaxMS: 1, BytesSent: 0},
		{Iterations: 3, MedianMS: 1, MinMS: 2, MaxMS: 3, BytesSent: 1},
	} {
		if Sane([]Record{bad}, 3) == nil {
			t.Errorf("Sane accepted %+v", bad)
		}
	}
	if Sane(nil, 1) == nil {
		t.Error("Sane accepted no records")
	}
}

func TestOutputsGolden(t *testing.T) {
	rs := []Record{
		{Workload: "hello", Strategy: Hotpod, Link: "direct", Iterations: 5, MedianMS: 512, MinMS: 480, MaxMS: 600, BytesSent: 5808367, HotpodMS: 500, AppMS: 490},
		{Workload: "hello", Strategy: Image, Link: "direct", Iterations: 5, MedianMS: 1450, MinMS: 1300, MaxMS: 2100, BytesSent: 2650000, AppMS: 1400},
		{Workload: "hello", Strategy: InCluster, Link: "direct", Iterations: 5, MedianMS: 450, MinMS: 440, MaxMS: 500, BytesSent: 3584, AppMS: 430},
		{Workload: "hello", Strategy: UPX, Link: "direct", Skipped: "no upx binary on PATH"},
		{Workload: "seedapp", Strategy: Hotpod, Link: "20mbit:30ms", Iterations: 5, MedianMS: 2400, MinMS: 2100, MaxMS: 2900, BytesSent: 900000},
	}
	for name, write := range map[string]func(*bytes.Buffer){
		"table.md":  func(b *bytes.Buffer) { WriteMarkdown(b, rs) },
		"chart.svg": func(b *bytes.Buffer) { WriteSVG(b, rs) },
		"records.json": func(b *bytes.Buffer) {
			if err := WriteJSON(b, rs); err != nil {
				t.Fatal(err)
			}
		},
	} {
		var b bytes.Buffer
		write(&b)
		testutil.Golden(t, filepath.Join("testdata", name), b.Bytes())
	}
}

func TestWorkloadEditRewritesTheStamp(t *testing.T) {
	root := t.TempDir()
	src, err := os.ReadFile("../../examples/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "examples/hello"), 0o755)
	os.WriteFile(filepath.Join(root, "examples/hello/main.go"), src, 0o644)
	w, err := prepare(t.Context(), "hello", root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stamp, err := w.edit()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(w.file)
	if !strings.Contains(string(b), "time.Unix(0, "+itoa(stamp)+")") || len(regexp.MustCompile(`time\.Unix\(0, `).FindAll(b, -1)) != 1 {
		t.Fatalf("edited file lacks the stamp %d", stamp)
	}
	if err := w.restore(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(w.file); !bytes.Equal(b, src) {
		t.Fatal("restore did not bring back the original")
	}
	if _, err := prepare(t.Context(), filepath.Join(root, "nowhere"), root, t.TempDir()); err == nil {
		t.Fatal("a missing workload directory was accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
