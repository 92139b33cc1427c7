package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestSummarizeAndSane(t *testing.T) {
	r := summarize("hello", Hotpod, "direct", []sample{
		{ms: 500, hotpodMS: 480, appMS: 470, bytes: 100, phases: &Phases{Build: 400, Ship: 30, Ready: 50}},
		{ms: 300, hotpodMS: 290, appMS: 280, bytes: 300, phases: &Phases{Build: 200, Ship: 40, Ready: 50}},
		{ms: 400, hotpodMS: 380, appMS: 370, bytes: 200, phases: &Phases{Build: 300, Ship: 50, Ready: 30}},
	})
	// Each phase's own median: build 300, ship 40, ready 50 (from three different edits).
	want := Record{Workload: "hello", Strategy: Hotpod, Link: "direct", Iterations: 3, MedianMS: 400, MinMS: 300,
		MaxMS: 500, BytesSent: 200, HotpodMS: 380, AppMS: 370, Phases: &Phases{Build: 300, Ship: 40, Ready: 50}}
	if r.Phases == nil || *r.Phases != *want.Phases {
		t.Fatalf("phases: got %+v, want %+v", r.Phases, want.Phases)
	}
	r.Phases, want.Phases = nil, nil
	if r != want {
		t.Fatalf("got %+v\nwant %+v", r, want)
	}
	r.Phases = &Phases{Build: 300, Ship: 40, Ready: 50}
	if err := Sane([]Record{r}, 3); err != nil {
		t.Fatal(err)
	}
	// A cross-check missing for one edit is no cross-check: its median would be of other edits.
	partial := summarize("hello", Hotpod, "direct", []sample{
		{ms: 500, hotpodMS: 480, appMS: 470, bytes: 100},
		{ms: 300, hotpodMS: 290, bytes: 300},
		{ms: 400, appMS: 370, bytes: 200},
	})
	if partial.HotpodMS != 0 || partial.AppMS != 0 || partial.Phases != nil {
		t.Fatalf("cross-checks from some of the edits: hotpod %v, app %v, phases %v", partial.HotpodMS, partial.AppMS, partial.Phases)
	}
	if err := Sane([]Record{partial}, 3); err == nil {
		t.Fatal("Sane accepted a record with cross-checks missing")
	}
	if Sane(nil, 1) == nil {
		t.Error("Sane accepted no records")
	}
}

// Each way a measurement can go wrong is refused, with an error that says which.
func TestSaneRefuses(t *testing.T) {
	good := func(strategy string) Record {
		r := Record{Workload: "hello", Strategy: strategy, Link: "direct", Iterations: 3, MedianMS: 400, MinMS: 300,
			MaxMS: 500, BytesSent: 200, AppMS: 370}
		if HotpodReports(strategy) {
			r.HotpodMS = 380
			r.Phases = &Phases{Build: 300, Ship: 40, Ready: 40}
		}
		return r
	}
	for _, s := range Strategies() {
		if err := Sane([]Record{good(s)}, 3); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for _, c := range []struct {
		name     string
		strategy string
		mut      func(*Record)
		want     string
	}{
		{"too few edits", Hotpod, func(r *Record) { r.Iterations = 2 }, "measured 2 edits"},
		{"no time", Image, func(r *Record) { r.MinMS = 0 }, "impossible times"},
		{"min above median", Image, func(r *Record) { r.MinMS = 450 }, "impossible times"},
		{"median above max", Image, func(r *Record) { r.MaxMS = 350 }, "impossible times"},
		{"beyond the timeout", Image, func(r *Record) { r.MaxMS = 301e3 }, "impossible times"},
		{"no bytes", Image, func(r *Record) { r.BytesSent = 0 }, "no bytes"},
		{"hotpod silent", Hotpod, func(r *Record) { r.HotpodMS = 0 }, "hotpod reported no"},
		{"hotpod silent, full", Full, func(r *Record) { r.HotpodMS = 0 }, "hotpod reported no"},
		{"hotpod silent, floor", Local, func(r *Record) { r.HotpodMS = 0 }, "hotpod reported no"},
		{"hotpod silent, upx", UPX, func(r *Record) { r.HotpodMS = 0 }, "hotpod reported no"},
		{"no phases", Hotpod, func(r *Record) { r.Phases = nil }, "no phases"},
		{"no build phase, floor", Local, func(r *Record) { r.Phases.Build = 0 }, "no phases"},
		{"hotpod later than the answer", Hotpod, func(r *Record) { r.HotpodMS = r.MedianMS + crossSlack + 1 }, "hotpod says"},
		{"app silent", Image, func(r *Record) { r.AppMS = 0 }, "log line"},
		{"app silent, hotpod", Hotpod, func(r *Record) { r.AppMS = 0 }, "log line"},
		{"app silent, incluster", InCluster, func(r *Record) { r.AppMS = 0 }, "log line"},
		{"app later than the answer", Image, func(r *Record) { r.AppMS = r.MedianMS + crossSlack + 1 }, "the app says"},
	} {
		r := good(c.strategy)
		c.mut(&r)
		err := Sane([]Record{good(Local), r}, 3)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.strategy) {
			t.Errorf("%s: got %v, want an error naming %s with %q", c.name, err, c.strategy, c.want)
		}
	}
	// Within the slack: the agent's probe may see the app a little after the bench did.
	r := good(Hotpod)
	r.HotpodMS, r.AppMS = r.MedianMS+crossSlack, r.MedianMS+crossSlack
	if err := Sane([]Record{r}, 3); err != nil {
		t.Errorf("within the slack: %v", err)
	}
}

// Every run committed under docs/bench passes the checks: they hold for real measurements.
func TestCommittedRunsAreSane(t *testing.T) {
	files, err := filepath.Glob("../../docs/bench/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed runs under docs/bench (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rs []Record
		if err := json.Unmarshal(b, &rs); err != nil || len(rs) == 0 {
			t.Fatalf("%s: %d records, %v", f, len(rs), err)
		}
		for _, r := range rs {
			// Runs from before 2026-12-02 03:00 UTC have no phases: the rest of the checks hold.
			if err := sane([]Record{r}, r.Iterations, r.Phases != nil); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
		}
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

// Every strategy is its own type behind one interface: each name is found, the cross-check
// expectations follow what the strategy runs, and only the floors (gobuild, local) stay off
// the cluster.
func TestStrategiesByName(t *testing.T) {
	names := Strategies()
	if len(names) != 11 || names[0] != GoBuild {
		t.Fatalf("strategies %v", names)
	}
	hotpodRuns := map[string]bool{Local: true, Hotpod: true, Quick: true, Full: true, UPX: true}
	for _, n := range names {
		s, err := Lookup(n)
		if err != nil || s.Name() != n {
			t.Fatalf("Lookup(%q) = %v, %v", n, s, err)
		}
		if s.HotpodReports() != hotpodRuns[n] || HotpodReports(n) != hotpodRuns[n] {
			t.Errorf("%s: HotpodReports %v, want %v", n, s.HotpodReports(), hotpodRuns[n])
		}
		if s.Cluster() != (n != Local && n != GoBuild) {
			t.Errorf("%s: Cluster %v", n, s.Cluster())
		}
		if n != UPX && s.Unavailable() != "" {
			t.Errorf("%s is unavailable: %s", n, s.Unavailable())
		}
	}
	if _, err := Lookup("docker"); err == nil || !strings.Contains(err.Error(), "want one of gobuild, local, hotpod") {
		t.Errorf("Lookup(docker): %v", err)
	}
	if HotpodReports("nonsense") {
		t.Error("HotpodReports of an unknown strategy")
	}
}
