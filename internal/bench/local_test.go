package bench

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hotpod/hotpod/internal/bench/link"
	"github.com/hotpod/hotpod/internal/testutil"
)

var hotpodBin string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithBinary(m, "../../cmd/hotpod", &hotpodBin)) }

// The floor needs no cluster: the real hotpod dev --local on examples/hello, one edit after the
// warm-up, and the record passes Sane, so hotpod's figure and the app's log line were both caught
// for the edit and neither is later than the answer the bench saw.
func TestLocalStrategyMeasuresWithCrossChecks(t *testing.T) {
	var progress testutil.SyncBuffer
	rs, err := Run(t.Context(), Config{Workloads: []string{"hello"}, Strategies: []string{Local},
		Links: []link.Link{{}}, Iterations: 1, RepoRoot: "../..", Hotpod: hotpodBin, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rs) != 1 || rs[0].Strategy != Local {
		t.Fatalf("records %+v", rs)
	}
	if err := Sane(rs, 1); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
}

// The go build floor needs neither hotpod nor a cluster: real go builds of examples/hello and a
// restart, one edit after the warm-up; the record passes Sane (the app's own line caught for the
// edit, no later than the answer), and the bytes are the whole binary, as a plain build writes.
func TestGoBuildStrategyMeasures(t *testing.T) {
	var progress testutil.SyncBuffer
	rs, err := Run(t.Context(), Config{Workloads: []string{"hello"}, Strategies: []string{GoBuild},
		Links: []link.Link{{}}, Iterations: 1, RepoRoot: "../..", Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rs) != 1 || rs[0].Strategy != GoBuild {
		t.Fatalf("records %+v", rs)
	}
	if err := Sane(rs, 1); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if rs[0].BytesSent < 1<<20 {
		t.Errorf("gobuild says %d bytes per edit: want the whole binary hello builds to (megabytes)", rs[0].BytesSent)
	}
}

// When hotpod dev exits, the error carries the last lines it wrote: here the compiler's. The
// goroutine reading hotpod's stderr is still adding lines while the error is made (run with
// -race).
func TestHotpodExitReportsItsLastLines(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/broken\n\ngo 1.24\n",
		"main.go": "package main\n\nimport \"time\"\n\nvar called = time.Unix(0, 0)\n\nfunc main() { println(called.String(), notDefined) }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Run(t.Context(), Config{Workloads: []string{dir}, Strategies: []string{Local},
		Links: []link.Link{{}}, Iterations: 1, RepoRoot: "../..", Hotpod: hotpodBin})
	if err == nil || !strings.Contains(err.Error(), "hotpod dev exited") || !strings.Contains(err.Error(), "undefined: notDefined") {
		t.Fatalf("got %v, want hotpod dev's exit with the compiler's error", err)
	}
}

// add and String from two goroutines at once (run with -race).
func TestTailIsSafeForTwoGoroutines(t *testing.T) {
	var tl tail
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 100 {
			tl.add("a line")
		}
	}()
	for range 100 {
		_ = tl.String()
	}
	wg.Wait()
	if got := strings.Count(tl.String(), "a line"); got != 10 {
		t.Fatalf("tail keeps %d lines, want the last 10", got)
	}
}
