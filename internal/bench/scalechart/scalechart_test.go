package scalechart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/testutil"
)

func TestGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "scale.txt"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := Parse(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range run.Results {
		names = append(names, r.Name)
	}
	// the parent's name line, the failed case and the logs are not results
	want := []string{"BenchmarkScale/pods=1-2", "BenchmarkScale/pods=3-2", "BenchmarkScale/pods=10-2", "BenchmarkScale/pods=30-2", "BenchmarkScale/services=3/replicas=1-2"}
	if !slices.Equal(names, want) {
		t.Fatalf("results %v, want %v", names, want)
	}
	if got := run.Results[3].Metrics["cli-peak-rss-MiB"]; got != 141.2 {
		t.Errorf("pods=30's cli-peak-rss-MiB %v, want 141.2", got)
	}
	if run.CPU != "Oxide Virtual Turin-like Processor" || len(run.Comments) != 3 {
		t.Errorf("cpu %q and %d comments, want the cpu line and the 3 # lines", run.CPU, len(run.Comments))
	}
	var b bytes.Buffer
	if err := SVG(&b, run, "BenchmarkScale: edit → ready of hello and of 3 services sharing a package"); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b.Bytes())
	testutil.Golden(t, filepath.Join("testdata", "scale.svg"), b.Bytes())
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "no benchmark results"},
		{"only a header", "goos: linux\nPASS\n", "no benchmark results"},
		{"a value without its unit", "BenchmarkScale/pods=1-2 5 1784 all-ready-ms 12\n", "line 1: BenchmarkScale/pods=1-2: the metrics are not value-unit pairs"},
		{"a unit without a number", "\nBenchmarkScale/pods=1-2 5 fast all-ready-ms\n", `line 2: BenchmarkScale/pods=1-2: all-ready-ms "fast" is not a number`},
		{"not a finite number", "BenchmarkX-2 5 NaN all-ready-ms\n", `line 1: BenchmarkX-2: all-ready-ms "NaN" is not a number`},
		{"a value whose sum could overflow", "BenchmarkX-2 5 1.7e308 edit-to-ready-ms\n", `line 1: BenchmarkX-2: edit-to-ready-ms "1.7e308" is out of a chart's range (0 to 1e+12)`},
		{"a negative value", "BenchmarkX-2 5 -1800 edit-to-ready-ms\n", `line 1: BenchmarkX-2: edit-to-ready-ms "-1800" is out of a chart's range (0 to 1e+12)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error %v, want one starting with %q", err, c.want)
			}
		})
	}
}

func TestSVGNeedsTheMetrics(t *testing.T) {
	run, err := Parse(strings.NewReader("BenchmarkSharedEdit/services=3-2 8 4232 all-ready-ms 2071 build-ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = SVG(io.Discard, run, "x")
	if want := "BenchmarkSharedEdit/services=3-2 has no edit-to-ready-ms"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want one starting with %q", err, want)
	}
}

func TestLabel(t *testing.T) {
	for _, c := range []struct {
		name string
		want []string
	}{
		{"BenchmarkScale/pods=10-2", []string{"10 pods"}},
		{"BenchmarkScale/services=3/replicas=10-2", []string{"3 services", "× 10 replicas"}},
		{"BenchmarkScale/pods=1", []string{"1 pod"}},
		{"BenchmarkScale/services=3/replicas=1-2", []string{"3 services", "× 1 replica"}},
		{"BenchmarkDevLoop-16", []string{"DevLoop"}},
		{"BenchmarkScale/a-b", []string{"a-b"}},
	} {
		if got := Label(c.name); !slices.Equal(got, c.want) {
			t.Errorf("Label(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want []string
	}{
		{"start 12:00, load 1 2 3, commit abc", 40, []string{"start 12:00, load 1 2 3, commit abc"}},
		{"start 12:00, load 1 2 3, commit abc", 20, []string{"start 12:00,", "load 1 2 3,", "commit abc"}},
		{"no commas in this long line", 10, []string{"no commas in this long line"}},
		{"a long first part, b", 10, []string{"a long first part, b"}},
		{"", 10, []string{""}},
	} {
		if got := wrap(c.s, c.n); !slices.Equal(got, c.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestTick(t *testing.T) {
	for _, c := range []struct{ hi, want float64 }{{9500, 1000}, {1200, 200}, {30000, 5000}, {80, 10}, {0, 1000}} {
		if got := tick(c.hi); got != c.want {
			t.Errorf("tick(%v) = %v, want %v", c.hi, got, c.want)
		}
	}
}

// Whatever Parse accepts, SVG refuses with an error or draws well-formed XML: the names and
// the header are the input's, escaped.
func FuzzParse(f *testing.F) {
	in, err := os.ReadFile(filepath.Join("testdata", "scale.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(in))
	f.Add("BenchmarkScale/<pods>=1&-2 5 1 all-ready-ms 2 edit-to-ready-ms\n# \"load\" <b>\n")
	f.Fuzz(func(t *testing.T, s string) {
		run, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := SVG(&b, run, "fuzz"); err != nil {
			return
		}
		wellFormed(t, b.Bytes())
	})
}

func wellFormed(t *testing.T, svg []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
	}
}
