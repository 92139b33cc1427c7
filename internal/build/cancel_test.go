package build_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/build"
)

// slowModule is a module whose main package takes the compiler a while: one function of
// thousands of statements, with a constant unique to the test run so the build cache cannot
// answer for it.
func slowModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var src strings.Builder
	fmt.Fprintf(&src, "package main\n\nimport \"fmt\"\n\nvar sink = %d\n\nfunc big() {\n", time.Now().UnixNano())
	for i := range 8000 {
		fmt.Fprintf(&src, "\tif sink == %d {\n\t\tsink += len(fmt.Sprint(%d, sink))\n\t}\n", i, i)
	}
	src.WriteString("}\n\nfunc main() { big() }\n")
	for name, body := range map[string]string{"go.mod": "module example.com/slow\n\ngo 1.24\n", "main.go": src.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// processesMentioning lists the processes whose command line contains s.
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

// cancelWhileCompiling runs build in the background, cancels its context once a process whose
// command line holds both tmp and compiler runs, and returns build's error.
func cancelWhileCompiling(t *testing.T, tmp, compiler string, build func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- build(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(strings.Join(processesMentioning(tmp), "\n"), compiler) {
		select {
		case err := <-done:
			t.Fatalf("the build ended before the compiler was seen: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no compiler started within 5 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the cancelled build did not return")
	}
	return nil
}

// A build cancelled while the compiler runs (a newer edit, Ctrl-C reaching hotpod alone) leaves
// no go-build work directory and no compiler running: the go command is interrupted, not killed.
func TestCancelledBuildLeavesNothing(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc to see the compiler")
	}
	dir := slowModule(t)
	tmp := t.TempDir() // go's work directory goes here: the test can see it is gone
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(t.TempDir(), "slow")
	b := &build.Builder{Dir: dir, Package: ".", Options: build.Options{LDFlags: "-s -w"}}
	err := cancelWhileCompiling(t, tmp, "compile", func(ctx context.Context) error {
		_, err := b.Build(ctx, out)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %v; want context.Canceled", err)
	}
	// The go command removes its work directory before it exits, and waits for its compiler.
	if procs := processesMentioning(tmp); len(procs) > 0 {
		t.Errorf("still running after the cancelled build returned: %v", procs)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "go-build*")); len(left) > 0 {
		t.Errorf("the cancelled build left %v", left)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the cancelled build wrote its output")
	}
}

// Quick's quick path, cancelled while its compiler runs, stops it as Builder does, keeps its
// state (the next build takes the quick path and is go build's binary) and, closed, leaves no
// work directory.
func TestQuickCancelled(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc to see the compiler")
	}
	dir := slowModule(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("GOTMPDIR", "")
	q, plain := quickPair(t, dir, ".")
	outs := t.TempDir()
	if _, err := q.Build(t.Context(), filepath.Join(outs, "first")); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.go")
	edit := func(n int) {
		src, err := os.ReadFile(main)
		if err != nil {
			t.Fatal(err)
		}
		first, rest, _ := strings.Cut(string(src), "\nvar sink = ")
		_, rest, _ = strings.Cut(rest, "\n")
		if err := os.WriteFile(main, fmt.Appendf(nil, "%s\nvar sink = %d\n%s", first, n, rest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit(1)
	err := cancelWhileCompiling(t, tmp, "/compile ", func(ctx context.Context) error {
		_, err := q.Build(ctx, filepath.Join(outs, "cancelled"))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: %v; want context.Canceled", err)
	}
	if procs := processesMentioning(tmp); len(procs) > 0 {
		t.Errorf("still running after the cancelled build returned: %v", procs)
	}
	edit(2)
	res, err := q.Build(t.Context(), filepath.Join(outs, "quick"))
	if err != nil || !res.Quick {
		t.Fatalf("after the cancelled build: %v, quick %v, %s", err, res.Quick, res.Why)
	}
	if _, err := plain.Build(t.Context(), filepath.Join(outs, "go")); err != nil {
		t.Fatal(err)
	}
	sameBinary(t, "after a cancelled build", filepath.Join(outs, "quick"), filepath.Join(outs, "go"), false)
	if held, _ := filepath.Glob(filepath.Join(tmp, "*", "hotpod-go-*")); len(held) != 1 {
		t.Errorf("Quick holds %v: want its one work directory", held)
	}
	q.Close()
	if left, _ := filepath.Glob(filepath.Join(tmp, "*", "hotpod-go-*")); len(left) > 0 {
		t.Errorf("Close left %v", left)
	}
}
