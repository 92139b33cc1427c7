package agent_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/klauspost/compress/zstd"
)

// The agent as a container runs it: the image's binary seeded into an emptyDir, updated, then
// the container restarted (the agent stopped and started again on the same emptyDir). The
// swapped binary runs again only if its record says the agent put exactly it there; anything
// else (what a node crash can leave of an unsynced binary and its record) is replaced by the
// image's binary, and the agent says so.
func TestRestartRunsOnlyARecordedBinary(t *testing.T) {
	v1, v2 := read(t, childV1), read(t, childV2)
	sum1, sum2 := delta.Sum(v1).String(), delta.Sum(v2).String()
	cases := []struct {
		name  string
		crash func(t *testing.T, bin, record string) // what the crash left; nil: a clean restart
		want  string                                 // what runs after the restart
		says  string                                 // the agent's line about it ("" none)
	}{
		{"record matches", nil, "v2", ""},
		{"record missing", func(t *testing.T, bin, record string) { remove(t, record) },
			"v1", "has no record of its SHA-256"},
		{"binary torn", func(t *testing.T, bin, record string) {
			// Unsynced blocks lost: the file keeps its length, a stretch of it is zeros.
			b := read(t, bin)
			clear(b[len(b)/3 : len(b)/2])
			write(t, bin, b)
		}, "v1", "does not match its record (a node crash during an update?)"},
		{"binary empty", func(t *testing.T, bin, record string) { write(t, bin, nil) },
			"v1", "does not match its record"},
		{"rename lost, record kept", func(t *testing.T, bin, record string) { write(t, bin, v1) },
			"v1", "does not match its record"},
		{"record torn", func(t *testing.T, bin, record string) { write(t, record, []byte(sum2[:20])) },
			"v1", "has no record"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			image := filepath.Join(t.TempDir(), "app")
			write(t, image, v1)
			dir := t.TempDir() // the emptyDir
			bin, record := filepath.Join(dir, "app"), filepath.Join(dir, ".app.hotpod-sha256")

			a := startAgentProc(t, bin, "--seed", image)
			if st, _ := a.client.Status(t.Context()); st.SHA256 != sum1 || getApp(t, a.port) != "v1" {
				t.Fatalf("the seeded agent runs %+v", st)
			}
			if rec := recordOf(t, record); rec != sum1 {
				t.Fatalf("after the seed the record says %s, want %s", rec, sum1)
			}
			res, err := a.client.Update(t.Context(), delta.EncodeRaw(v2), waitReady)
			if err != nil || res.SHA256 != sum2 {
				t.Fatalf("update: %+v %v", res, err)
			}
			if rec := recordOf(t, record); rec != sum2 {
				t.Fatalf("after the update the record says %s, want %s", rec, sum2)
			}
			stopAgentProc(t, a)
			if c.crash != nil {
				c.crash(t, bin, record)
			}

			t0 := time.Now()
			a = startAgentProc(t, bin, "--seed", image)
			t.Logf("the restarted agent's app was ready %s after the agent started", time.Since(t0).Round(time.Millisecond))
			st, err := a.client.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"v1": sum1, "v2": sum2}[c.want]
			if st.SHA256 != want || st.State != agentapi.StateReady {
				t.Fatalf("after the restart the agent runs %s (%s), want %s (%s)\n%s", st.SHA256, st.State, c.want, want, a.out.String())
			}
			if got := getApp(t, a.port); got != c.want {
				t.Fatalf("after the restart the app answers %q, want %q", got, c.want)
			}
			if onDisk := delta.Sum(read(t, bin)).String(); onDisk != want {
				t.Fatalf("the binary on disk is %s, want %s", onDisk, want)
			}
			if rec := recordOf(t, record); rec != want {
				t.Fatalf("the record says %s, want %s", rec, want)
			}
			line := "the binary in " + dir + " "
			switch out := a.out.String(); {
			case c.says == "" && strings.Contains(out, line):
				t.Fatalf("the agent replaced a binary it had recorded:\n%s", out)
			case c.says != "" && !strings.Contains(out, line+c.says) ||
				c.says != "" && !strings.Contains(out, ": starting the image's binary; hotpod dev sends the current build again\n"):
				t.Fatalf("the agent's output lacks %q:\n%s", line+c.says, out)
			}
			// The binary it starts from keeps working: the next update lands.
			if res, err := a.client.Update(t.Context(), delta.EncodeRaw(v2), waitReady); err != nil || res.SHA256 != sum2 || getApp(t, a.port) != "v2" {
				t.Fatalf("the next update: %+v %v", res, err)
			}
		})
	}
}

// Without --seed there is nothing else to run: a binary without a record is the user's own and
// runs, one whose record does not match is refused in one line that says what to do.
func TestWithoutSeedAMismatchIsRefused(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	copyFile(t, childV1, bin)
	cfg := agent.Config{Command: []string{bin}}
	if _, err := agent.New(cfg); err != nil {
		t.Fatalf("a binary without a record: %v", err)
	}
	write(t, filepath.Join(dir, ".app.hotpod-sha256"), []byte(delta.Sum(read(t, childV2)).String()+"\n"))
	_, err := agent.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "does not match its record") || !strings.Contains(err.Error(), "pass the image's binary as --seed") {
		t.Fatalf("a binary that does not match its record: %v", err)
	}
	write(t, filepath.Join(dir, ".app.hotpod-sha256"), []byte(delta.Sum(read(t, childV1)).String()+"\n"))
	if _, err := agent.New(cfg); err != nil {
		t.Fatalf("a binary that matches its record: %v", err)
	}
}

// Updates leave nothing behind but the binary and its record: each swap's old binary is removed
// after the answer, and what an agent killed mid-update left is swept when the next one starts.
func TestOldBinariesDoNotPileUp(t *testing.T) { swapWays(t, testOldBinariesDoNotPileUp) }

func testOldBinariesDoNotPileUp(t *testing.T) {
	v1, v2 := read(t, childV1), read(t, childV2)
	fwd := encode(t, v1, v2, zstd.SpeedFastest)
	back := encode(t, v2, v1, zstd.SpeedFastest)
	dir := t.TempDir()
	// Left by an agent killed mid-update: an old binary whose removal had not run, a new one
	// half-written, a record half-written.
	for _, name := range []string{".app.hotpod-old-3", ".app.hotpod-new-123", ".app.hotpod-sha256-new-9"} {
		write(t, filepath.Join(dir, name), v1)
	}
	f := startIn(t, dir)
	f.waitReady(t)
	if m := leftovers(dir); len(m) != 0 {
		t.Fatalf("left at start: %v", m)
	}
	started := agentapi.UpdateParams{Wait: agentapi.WaitStarted, Timeout: 30 * time.Second}
	for i, patch := range [][]byte{fwd, back, delta.EncodeRaw(v2), delta.EncodeRaw(v1), fwd} {
		if _, err := f.client.Update(t.Context(), patch, started); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if rec := settled(t, dir); rec != delta.Sum(v2).String() {
		t.Fatalf("the record says %s, the binary is v2", rec)
	}
	if st := f.waitReady(t); st.State != agentapi.StateReady || f.get(t) != "v2" {
		t.Fatalf("after the updates: %+v", st)
	}
}

// A new binary that cannot even be started brings the old one back, right after another swap
// whose old binary is still being removed: each swap has its own link to the old binary.
func TestUnstartableBinaryBringsOldBack(t *testing.T) {
	swapWays(t, testUnstartableBinaryBringsOldBack)
}

func testUnstartableBinaryBringsOldBack(t *testing.T) {
	v2 := read(t, childV2)
	dir := t.TempDir()
	f := startIn(t, dir)
	f.waitReady(t)
	started := agentapi.UpdateParams{Wait: agentapi.WaitStarted, Timeout: 30 * time.Second}
	if _, err := f.client.Update(t.Context(), delta.EncodeRaw(v2), started); err != nil {
		t.Fatal(err)
	}
	notABinary := bytes.Repeat([]byte("not a binary\n"), 1000)
	_, err := f.client.Update(t.Context(), delta.EncodeRaw(notABinary), waitReady)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "exec format error") {
		t.Fatalf("update to a file that is no binary: %v, want the exec error", err)
	}
	st := f.waitReady(t)
	if st.State != agentapi.StateReady || st.SHA256 != delta.Sum(v2).String() || f.get(t) != "v2" {
		t.Fatalf("after the failed start: %+v, want v2 back and ready", st)
	}
	if !bytes.Equal(read(t, f.bin), v2) {
		t.Fatal("the binary on disk is not v2")
	}
	if rec := settled(t, dir); rec != st.SHA256 {
		t.Fatalf("the record says %s, the binary is %s", rec, st.SHA256)
	}
}

// swapWays runs test with the agent putting each new binary and record in place by an exchange
// (on Linux it must: the test fails when nothing was exchanged) and by a link and a rename, what
// it falls back to where the filesystem or the architecture cannot exchange.
func swapWays(t *testing.T, test func(t *testing.T)) {
	t.Run("exchange", func(t *testing.T) {
		var exchanged atomic.Int32
		defer agent.WrapExchange(func(real func(a, b string) error) func(a, b string) error {
			return func(a, b string) error {
				err := real(a, b)
				if err == nil {
					exchanged.Add(1)
				}
				return err
			}
		})()
		test(t)
		if runtime.GOOS == "linux" && exchanged.Load() == 0 {
			t.Fatal("no binary or record was put in place by an exchange: each swap renamed over the old file")
		}
	})
	t.Run("rename", func(t *testing.T) {
		defer agent.WrapExchange(func(func(a, b string) error) func(a, b string) error {
			return func(string, string) error { return errors.ErrUnsupported }
		})()
		test(t)
	})
}

// stopAgentProc stops the agent as the kubelet stops a container, and waits for it.
func stopAgentProc(t *testing.T, a *agentProc) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not stop:\n%s", a.out.String())
	}
	os.Remove(filepath.Join(filepath.Dir(a.cmd.Args[len(a.cmd.Args)-1]), "addr")) // the next one writes its own
}

func recordOf(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(string(read(t, path)))
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
