package examples_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotpod/hotpod/examples"
	"github.com/hotpod/hotpod/internal/testutil"
)

// Each module's archive is its files under examples/, byte for byte.
func TestArchives(t *testing.T) {
	for name, names := range examples.Modules {
		t.Run(name, func(t *testing.T) {
			files := map[string][]byte{}
			for _, n := range names {
				b, err := os.ReadFile(filepath.Join(name, filepath.FromSlash(n)))
				if os.IsNotExist(err) {
					t.Skipf("examples/%s is not here (a module zip leaves it out)", name)
				}
				if err != nil {
					t.Fatal(err)
				}
				files[n] = b
			}
			comment := "Generated from examples/" + name + " by TestArchives (go test ./examples -update): edit those files, not this one.\n"
			a, err := examples.Archive(comment, names, files)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, name+".txtar", a)

			got, err := examples.Sources(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(files) {
				t.Errorf("the embedded archive has %d files, want %d", len(got), len(files))
			}
			for n, want := range files {
				if !bytes.Equal(got[n], want) {
					t.Errorf("the embedded %s differs from examples/%s/%s", n, name, n)
				}
			}
		})
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

// drainapp30 is drainapp's module and a 14.4 MB asset, the same bytes every time.
func TestDrainapp30(t *testing.T) {
	drain, err := examples.Sources("drainapp")
	if err != nil {
		t.Fatal(err)
	}
	a, err := examples.Sources("drainapp30")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := examples.Sources("drainapp30")
	for n, want := range drain {
		if !bytes.Equal(a[n], want) {
			t.Errorf("drainapp30's %s is not drainapp's", n)
		}
	}
	asset := a["asset/asset.bin"]
	if len(a) != len(drain)+3 || len(asset) != 14_400_000 || !bytes.Equal(asset, b["asset/asset.bin"]) ||
		bytes.Count(asset[:1<<20], []byte{0}) > 1<<13 {
		t.Fatalf("drainapp30: %d files (drainapp has %d), an asset of %d bytes, the same twice: %t",
			len(a), len(drain), len(asset), bytes.Equal(asset, b["asset/asset.bin"]))
	}
}
