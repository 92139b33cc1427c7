package watch_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/watch"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, w *watch.Watcher) watch.Batch {
	t.Helper()
	select {
	case b := <-w.Batches():
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("no batch")
	}
	return watch.Batch{}
}

func TestBatchesRelevantChangesOnly(t *testing.T) {
	src, other := t.TempDir(), t.TempDir()
	embedded := filepath.Join(other, "page.html")
	gomod := filepath.Join(other, "go.mod")
	write(t, embedded, "v1")
	write(t, gomod, "module x")
	const quiet = 50 * time.Millisecond
	w, err := watch.New(watch.Set{Dirs: []string{src}, Files: []string{embedded, gomod}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())

	// Editor noise and unrelated files make no batch; the real edit that follows does, alone.
	write(t, filepath.Join(src, ".main.go.swp"), "x")
	write(t, filepath.Join(src, "main.go~"), "x")
	write(t, filepath.Join(src, "4913"), "x")
	write(t, filepath.Join(src, "README.md"), "x")
	write(t, filepath.Join(other, "unrelated.go"), "x")
	edited := time.Now()
	write(t, filepath.Join(src, "main.go"), "package main")
	b := next(t, w)
	received := time.Now()
	if want := []string{filepath.Join(src, "main.go")}; !slices.Equal(b.Paths, want) {
		t.Fatalf("batch %v, want %v", b.Paths, want)
	}
	// The batch carries its first event's time: after the write began, and at least the quiet
	// period before the batch was delivered (the debounce waits that long after the last event).
	if b.First.Before(edited) || b.First.After(received.Add(-quiet)) {
		t.Fatalf("first event at %v, want between the write (%v) and %v before the batch arrived (%v)",
			b.First, edited, quiet, received)
	}

	// A burst (save of several files) is one batch; embedded files and go.mod count.
	write(t, filepath.Join(src, "a.go"), "package main")
	write(t, embedded, "v2")
	write(t, gomod, "module y")
	b = next(t, w)
	slices.Sort(b.Paths)
	want := []string{filepath.Join(src, "a.go"), gomod, embedded}
	slices.Sort(want)
	if !slices.Equal(b.Paths, want) {
		t.Fatalf("batch %v, want %v", b.Paths, want)
	}
}

func TestUpdateFollowsNewDirectories(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	w, err := watch.New(watch.Set{Dirs: []string{a}}, 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())
	if err := w.Update(watch.Set{Dirs: []string{b}}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(a, "old.go"), "package x") // no longer watched
	write(t, filepath.Join(b, "new.go"), "package x")
	got := next(t, w)
	if want := []string{filepath.Join(b, "new.go")}; !slices.Equal(got.Paths, want) {
		t.Fatalf("batch %v, want %v", got.Paths, want)
	}
}

func TestIgnored(t *testing.T) {
	for name, want := range map[string]bool{
		"main.go": false, ".main.go.swp": true, "main.go~": true, "#main.go#": true, ".#main.go": true,
		"4913": true, "main.go___jb_tmp___": true, "x.tmp": true, "go.mod": false,
	} {
		if got := watch.Ignored(name); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNewFailsOnMissingDirectory(t *testing.T) {
	if _, err := watch.New(watch.Set{Dirs: []string{filepath.Join(t.TempDir(), "gone")}}, time.Millisecond); err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}

// TestTreesWatchEveryFile: in a tree (ko's kodata/) every file counts, in subdirectories too,
// also in one made after the watch began; editor noise still does not.
func TestTreesWatchEveryFile(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := watch.New(watch.Set{Trees: []string{tree}}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())
	for _, p := range []string{"index.html", "css/site.css"} {
		write(t, filepath.Join(tree, ".#"+filepath.Base(p)), "x") // noise
		write(t, filepath.Join(tree, p), "v1")
		if b := next(t, w); !slices.Equal(b.Paths, []string{filepath.Join(tree, p)}) {
			t.Fatalf("batch %v, want %s", b.Paths, p)
		}
	}
	if err := os.MkdirAll(filepath.Join(tree, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	next(t, w) // the new directory itself
	write(t, filepath.Join(tree, "img", "logo.svg"), "<svg/>")
	if b := next(t, w); !slices.Contains(b.Paths, filepath.Join(tree, "img", "logo.svg")) {
		t.Fatalf("batch %v, want img/logo.svg", b.Paths)
	}
}
