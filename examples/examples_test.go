package examples_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotpod/hotpod/examples"
	"github.com/hotpod/hotpod/internal/testutil"
)

const comment = "Generated from examples/seedapp by TestSeedappArchive (go test ./examples -update): edit those files, not this one.\n"

// seedapp.txtar is examples/seedapp's files, byte for byte.
func TestSeedappArchive(t *testing.T) {
	files := map[string][]byte{}
	for _, n := range examples.SeedappFiles {
		b, err := os.ReadFile(filepath.Join("seedapp", filepath.FromSlash(n)))
		if os.IsNotExist(err) {
			t.Skip("examples/seedapp is not here (a module zip leaves it out)")
		}
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	a, err := examples.Archive(comment, examples.SeedappFiles, files)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "seedapp.txtar", a)

	got, err := examples.Sources("seedapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Errorf("the embedded archive has %d files, want %d", len(got), len(files))
	}
	for n, want := range files {
		if !bytes.Equal(got[n], want) {
			t.Errorf("the embedded %s differs from examples/seedapp/%s", n, n)
		}
	}
}

func TestHello(t *testing.T) {
	want, err := os.ReadFile("hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	got, err := examples.Sources("hello")
	if err != nil || !bytes.Equal(got["main.go"], want) || len(got) != 1 {
		t.Fatalf("hello: %d files, %v", len(got), err)
	}
	if _, err := examples.Sources("nginx"); err == nil {
		t.Fatal("an unknown workload has sources")
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	files := map[string][]byte{"a.go": []byte("package a\n-- not a marker\n"), "b/c.txt": []byte("\n")}
	a, err := examples.Archive("comment\n", []string{"a.go", "b/c.txt"}, files)
	if err != nil {
		t.Fatal(err)
	}
	got, err := examples.ParseArchive(a)
	if err != nil || len(got) != 2 || !bytes.Equal(got["a.go"], files["a.go"]) || !bytes.Equal(got["b/c.txt"], files["b/c.txt"]) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if _, err := examples.Archive("", []string{"x"}, map[string][]byte{"x": []byte("-- x --\n")}); err == nil {
		t.Error("a file with a marker line was archived")
	}
	if _, err := examples.Archive("", []string{"x"}, map[string][]byte{"x": []byte("no newline")}); err == nil {
		t.Error("a file without a final newline was archived")
	}
}
