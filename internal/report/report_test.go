package report_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

func emitAll(r *report.Reporter) {
	r.Infof("hello", "building %s", "example.com/hello")
	r.Ready(report.Ready{Service: "hello", Pod: "local", Iteration: 1, EditToReady: 310, BuildMS: 280, RestartMS: 20, ReadyMS: 10, BinaryBytes: 5808290, Method: "start", SHA256: "ab"})
	r.Ready(report.Ready{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 1, EditToReady: 2380, BuildMS: 640, BinaryBytes: 5808290, Method: "image", SHA256: "ab"})
	r.Ready(report.Ready{Service: "hello", Pod: "local", Iteration: 2, EditToReady: 520, DebounceMS: 20, BuildWaitMS: 3, BuildMS: 410, ReadMS: 5, QueueMS: 1, PatchMS: 1, ShipMS: 20, RestartMS: 10, ReadyMS: 50, BytesSent: 12288, BinaryBytes: 8355996, Method: "delta", SHA256: "cd"})
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
	r.Forwarding(report.Forwarding{Local: "127.0.0.1:40123", Remote: 8080})
	r.Slow(report.Slow{Service: "hello", Pod: "hello-7d4b9-x2x", Iteration: 7, AfterMS: 10000})
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

// Every line the reporter writes decodes to the event it was made from: one schema, both ways.
func TestDecodeReadsWhatTheReporterWrites(t *testing.T) {
	var b bytes.Buffer
	emitAll(report.New(&b, true))
	sc := bufio.NewScanner(&b)
	kinds := map[string]int{}
	for sc.Scan() {
		e, err := report.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		kinds[e.Kind]++
		if got := e.String(); got != sc.Text() {
			t.Errorf("decoded and written again:\n got %s\nwant %s", got, sc.Text())
		}
	}
	for _, k := range []string{report.KindReady, report.KindBuildFailed, report.KindCrashed, report.KindFailed, report.KindInfo, report.KindForwarding, report.KindProbeFailed, report.KindSynced, report.KindSlow, report.KindPaused} {
		if kinds[k] == 0 {
			t.Errorf("emitAll writes no %s event", k)
		}
	}
	var e report.Event
	var err error
	if e, err = report.Decode([]byte(`{"event":"forwarding","local":"127.0.0.1:1234","remote_port":8080}`)); err != nil || e.Forwarding == nil ||
		e.Forwarding.Local != "127.0.0.1:1234" || e.Forwarding.Remote != 8080 || e.Ready != nil {
		t.Fatalf("forwarding: %+v, %v", e.Forwarding, err)
	}
	e, err = report.Decode([]byte(`{"event":"ship_slow","service":"s","pod":"p","iteration":7,"after_ms":1}`))
	if s, p, it := e.Where(); err != nil || s != "s" || p != "p" || it != 7 {
		t.Fatalf("ship_slow: Where() = %q, %q, %d (%v)", s, p, it, err)
	}
}

func TestDecodeRefusesWhatIsNotTheSchema(t *testing.T) {
	for line, want := range map[string]string{
		``:                                     "not an event",
		`forwarding 127.0.0.1:1 to port 8080`:  "not an event",
		`{"message":"hi"}`:                     `no "event" member`,
		`{"event":"teleported"}`:               `unknown event "teleported"`,
		`{"event":"ready","pod":"a","podd":1}`: `unknown field "podd"`,
		`{"event":"ready","iteration":"2"}`:    "event ready",
		`{"event":"info","message":"a"} {}`:    "not an event",
		`{"event":"crashed","exit_code":1.5}`:  "event crashed",
	} {
		_, err := report.Decode([]byte(line))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want an error with %q", line, err, want)
		}
	}
}

// Decode never panics, and what it accepts is an event of the schema: written again, it decodes
// to the same event.
func FuzzDecode(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "events.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(golden, []byte("\n")) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := report.Decode(line)
		if err != nil {
			return
		}
		again, err := report.Decode([]byte(e.String()))
		if err != nil {
			t.Fatalf("%q decoded, but its re-encoding %s does not: %v", line, e.String(), err)
		}
		a, _ := json.Marshal(again)
		b, _ := json.Marshal(e)
		if !bytes.Equal(a, b) || again.Kind != e.Kind {
			t.Fatalf("%q: %s, then %s", line, b, a)
		}
	})
}
