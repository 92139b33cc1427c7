package main_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/testutil"
)

// Ctrl-C reaching hotpod alone (kill -INT, not the terminal's process group) during the first
// build: hotpod says "interrupted", exits 130, and leaves no go-build directory and no compiler
// running.
func TestInterruptDuringFirstBuild(t *testing.T) {
	mod := t.TempDir()
	var src strings.Builder
	// A main package that takes the compiler a while, unique to this run so that the build
	// cache cannot answer for it.
	fmt.Fprintf(&src, "package main\n\nimport \"fmt\"\n\nvar sink = %d\n\nfunc big() {\n", time.Now().UnixNano())
	for i := range 8000 {
		fmt.Fprintf(&src, "\tif sink == %d {\n\t\tsink += len(fmt.Sprint(%d, sink))\n\t}\n", i, i)
	}
	src.WriteString("}\n\nfunc main() { big() }\n")
	os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/slow\n\ngo 1.24\n"), 0o644)
	os.WriteFile(filepath.Join(mod, "main.go"), []byte(src.String()), 0o644)
	tmp := t.TempDir() // hotpod's and go's work directories go here
	cmd := exec.Command(hotpodBin, "dev", "--local", "--ready", fmt.Sprintf("tcp:%d", testutil.FreePort(t)))
	cmd.Dir = mod
	// A private agent cache (XDG_CACHE_HOME), the user's warm build cache.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CACHE_HOME="+filepath.Join(t.TempDir(), "cache"), "GOCACHE="+strings.TrimSpace(string(gocache)))
	var stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // on a failure path
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The agent is compiled first (the private XDG cache is empty), then the app: wait for the
	// app's compiler.
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(strings.Join(processesMentioning(tmp), "\n"), "=>example.com/slow") {
		select {
		case err := <-exited:
			t.Fatalf("hotpod exited before the app's compiler was seen: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no compiler of the app within 5 minutes:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("hotpod did not exit after SIGINT:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130", err)
	}
	if out := stderr.String(); !strings.Contains(out, "hotpod dev: interrupted") || strings.Contains(out, "context canceled") {
		t.Errorf("output %q: want interrupted, not context canceled", out)
	}
	if procs := processesMentioning(tmp); len(procs) > 0 {
		t.Errorf("still running after hotpod exited: %v", procs)
	}
	var left []string
	filepath.Walk(tmp, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), "go-build") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("go-build directories left: %v", left)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("left in TMPDIR: %v", entries)
	}
}
