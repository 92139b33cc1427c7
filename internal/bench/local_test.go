package bench

import (
	"os"
	"testing"

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
		Links: []Link{{}}, Iterations: 1, RepoRoot: "../..", Hotpod: hotpodBin, Progress: &progress})
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
