package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

var hotpodBin string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithBinary(m, ".", &hotpodBin)) }

// The real `hotpod dev --local` on a copy of examples/hello: the first start, an edit landing, a
// compile error that ships nothing, a crash that leaves the agent up, and Ctrl-C leaving nothing.
func TestDevLocalEditLands(t *testing.T) {
	src, err := os.ReadFile("../../examples/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	mainGo := filepath.Join(mod, "main.go")
	write := func(s string) {
		t.Helper()
		// Write beside and rename over, as editors do.
		tmp := filepath.Join(mod, ".main.go.tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, mainGo); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/hello\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write(string(src))
	tmp := t.TempDir() // hotpod's work dirs go here, so the test can see they are gone
	port := testutil.FreePort(t)
	cmd := exec.Command(hotpodBin, "dev", "--local", "--output", "json", "--ready", fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "TMPDIR="+tmp, "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache"))
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // on a failure path; the agent follows hotpod down (TestDevLocalKilledLeavesNothingRunning)
	events := testutil.Events(t, stdout, nil)
	await := func(kind string) report.Event {
		t.Helper()
		deadline := time.After(3 * time.Minute)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("hotpod exited while waiting for %s; stderr:\n%s", kind, stderr.String())
				}
				if e.Kind == kind {
					return e
				}
				if e.Kind != report.KindInfo {
					t.Fatalf("got %+v while waiting for %s; stderr:\n%s", e, kind, stderr.String())
				}
			case <-deadline:
				t.Fatalf("no %s event; stderr:\n%s", kind, stderr.String())
			}
		}
	}
	get := func() string {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("app not answering: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}

	r := await(report.KindReady).Ready
	if r.Iteration != 1 || r.Service != "hello" || r.Pod != "local" || r.BinaryBytes == 0 || r.EditToReady <= 0 {
		t.Fatalf("first ready: %+v", r)
	}
	if got := get(); got != "hello from hotpod" {
		t.Fatalf("app says %q", got)
	}

	edited := strings.Replace(string(src), "hello from hotpod", "hello after an edit", 1)
	write(edited)
	r = await(report.KindReady).Ready
	if r.Iteration != 2 || r.BuildMS <= 0 || r.BytesSent <= 0 || r.BinaryBytes <= 0 || r.EditToReady < r.BuildMS {
		t.Fatalf("second ready: %+v", r)
	}
	if got := get(); got != "hello after an edit" {
		t.Fatalf("after the edit the app says %q", got)
	}

	write(strings.Replace(edited, "fmt.Fprintln(w, greeting)", "fmt.Fprintln(w, greeting, undefinedName)", 1))
	bf := await(report.KindBuildFailed).BuildFailed
	if !strings.Contains(bf.Error, "main.go:") || !strings.Contains(bf.Error, "undefined: undefinedName") {
		t.Fatalf("build_failed: %+v", bf)
	}
	if got := get(); got != "hello after an edit" {
		t.Fatalf("after a compile error the app says %q", got)
	}

	write(strings.Replace(edited, "addr := \":8080\"", "fmt.Println(\"crashing on purpose\"); os.Exit(3); addr := \":8080\"", 1))
	cr := await(report.KindCrashed).Crashed
	if cr.ExitCode != 3 || !strings.Contains(strings.Join(cr.LastOutput, "\n"), "crashing on purpose") {
		t.Fatalf("crashed: %+v", cr)
	}
	write(strings.Replace(edited, "hello after an edit", "hello after the fix", 1))
	await(report.KindReady)
	if got := get(); got != "hello after the fix" {
		t.Fatalf("after the fix the app says %q", got)
	}

	// Ctrl-C: hotpod stops the agent and the app, removes its work dirs, and exits 0.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range events {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hotpod exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("hotpod did not exit after SIGINT")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left behind in TMPDIR: %v", left)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the app still answers after hotpod exited")
	}
	if procs := processesMentioning(tmp); len(procs) > 0 {
		t.Fatalf("processes left running: %v", procs)
	}
}

func processesMentioning(s string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// hotpod killed outright (no chance to clean up): the agent and the app follow it down.
func TestDevLocalKilledLeavesNothingRunning(t *testing.T) {
	src, err := os.ReadFile("../../examples/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/hello\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), src, 0o644)
	tmp := t.TempDir()
	port := testutil.FreePort(t)
	cmd := exec.Command(hotpodBin, "dev", "--local", "--output", "json", "--ready", fmt.Sprintf("tcp:%d", port))
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "TMPDIR="+tmp, "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	untilReady(t, sc)
	if len(processesMentioning(tmp)) == 0 {
		t.Fatal("no agent running before the kill")
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for len(processesMentioning(tmp)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still running after hotpod was killed: %v", processesMentioning(tmp))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Its work dirs could not go with it; the next hotpod removes them when it starts.
	if left, _ := os.ReadDir(tmp); len(left) == 0 {
		t.Fatal("the killed hotpod left no work dir: nothing to check the sweep with")
	}
	next := exec.Command(hotpodBin, "dev", "--local", "--output", "json", "--ready", fmt.Sprintf("tcp:%d", port))
	next.Dir, next.Env = mod, cmd.Env
	nout, err := next.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(nout)
	untilReady(t, sc)
	if err := next.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if err := next.Wait(); err != nil {
		t.Fatalf("the next hotpod: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left behind in TMPDIR after the next hotpod: %v", left)
	}
}

// untilReady reads events from sc until the first ready one.
func untilReady(t *testing.T, sc *bufio.Scanner) {
	t.Helper()
	for sc.Scan() {
		e, err := report.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("hotpod wrote a line that is not an event: %q: %v", sc.Text(), err)
		}
		if e.Kind == report.KindReady {
			return
		}
	}
	t.Fatal("hotpod ended before its first ready event")
}
