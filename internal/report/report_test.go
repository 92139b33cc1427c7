package report_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

func emitAll(r *report.Reporter) {
	r.Infof("hello", "building %s", "example.com/hello")
	r.Ready(report.Ready{Service: "hello", Pod: "local", Iteration: 1, EditToReady: 310, BuildMS: 280, RestartMS: 20, ReadyMS: 10, BinaryBytes: 5808290, Method: "start", SHA256: "ab"})
	r.Ready(report.Ready{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 1, EditToReady: 2380, BuildMS: 640, BinaryBytes: 5808290, Method: "image", SHA256: "ab"})
	r.Ready(report.Ready{Service: "hello", Pod: "local", Iteration: 2, EditToReady: 520, BuildMS: 410, ShipMS: 20, RestartMS: 10, ReadyMS: 50, BytesSent: 12288, BinaryBytes: 8355996, Method: "delta", SHA256: "cd"})
	r.Ready(report.Ready{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 3, EditToReady: 380, BuildMS: 300, ShipMS: 30, RestartMS: 10, ReadyMS: 5, BytesSent: 5808367, BinaryBytes: 5808290, Method: "raw", SHA256: "ef"})
	r.Ready(report.Ready{Service: "hello", Pod: "local", Iteration: 4, EditToReady: 290, BuildMS: 280, BinaryBytes: 5808290, Method: "unchanged", SHA256: "ef"})
	r.BuildFailed(report.BuildFailed{Service: "hello", Iteration: 4, Error: "./main.go:12:2: undefined: foo"})
	r.Crashed(report.Crashed{Service: "hello", Pod: "local", Iteration: 5, ExitCode: 1, LastOutput: []string{"panic: boom"}})
	r.Failed(report.Failed{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 6, Error: "ship: connection refused"})
	r.ProbeFailed(report.ProbeFailed{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 1, Probe: "GET http://127.0.0.1:8080/healthz", Error: "404 Not Found", Failures: 5})
	r.ProbeFailed(report.ProbeFailed{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 1, Probe: "exec podcli ready", Error: `exec: "podcli": executable file not found in $PATH`, Failures: 1, Permanent: true})
	r.Paused(report.Paused{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 7, At: "/src/hello/main.go:31 main.handler (breakpoint 1)"})
	r.Paused(report.Paused{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 8, At: "/src/hello/main.go:31 main.handler (breakpoint 1)", SwapPending: true})
	r.Synced(report.Synced{Service: "hello", Pod: "hello-7d4b9-x2x", Files: []string{"kodata/index.html"}, Bytes: 2048, EditToReady: 42})
}

func TestGolden(t *testing.T) {
	for name, asJSON := range map[string]bool{"events.txt": false, "events.jsonl": true} {
		var b bytes.Buffer
		emitAll(report.New(&b, asJSON))
		testutil.Golden(t, filepath.Join("testdata", name), b.Bytes())
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int]string{0: "0 B", 999: "999 B", 12288: "12 KB", 8355996: "8.4 MB"} {
		if got := report.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
