package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// hello and seedapp come from the copies built into hotpod: prepared outside any checkout, they
// are complete modules, the same files as examples/.
func TestBuiltinWorkloadsNeedNoCheckout(t *testing.T) {
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", "seedapp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	notCheckout, tmp := t.TempDir(), t.TempDir()
	w, err := prepare(t.Context(), "hello", notCheckout, tmp)
	if err != nil {
		t.Fatal(err)
	}
	build := exec.CommandContext(t.Context(), "go", "build", "-o", os.DevNull, ".")
	build.Dir = w.dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the prepared hello does not build: %v\n%s", err, out)
	}

	// A blob in place: prepare keeps it instead of generating 50 MB.
	if err := os.MkdirAll(filepath.Join(tmp, "seedapp", "blob"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "seedapp", "blob", "blob.bin"), []byte("blob"), 0o644)
	w, err = prepare(t.Context(), "seedapp", notCheckout, tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"go.mod", "go.sum", "main.go", "blob/blob.go", "gen/main.go"} {
		got, err := os.ReadFile(filepath.Join(w.dir, n))
		if err != nil {
			t.Fatalf("seedapp: %v", err)
		}
		want, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seedapp's %s differs from examples/seedapp/%s", n, n)
		}
	}
	if w.importPath != "github.com/hotpod/hotpod/examples/seedapp" {
		t.Errorf("seedapp's import path %q", w.importPath)
	}
}

// drainapp30 is the 30 MB binary the ship target is measured at: drainapp's module and its
// asset, which the linker keeps.
func TestDrainapp30IsA30MBBinary(t *testing.T) {
	t.Chdir(t.TempDir())
	w, err := prepare(t.Context(), "drainapp30", t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if w.importPath != "github.com/hotpod/hotpod/examples/drainapp" || filepath.Base(w.file) != "main.go" {
		t.Errorf("drainapp30 edits %s of %s, want drainapp's main.go", w.file, w.importPath)
	}
	bin := filepath.Join(t.TempDir(), "app")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = w.dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the prepared drainapp30 does not build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	asset, err := os.ReadFile(filepath.Join(w.dir, "asset", "asset.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 29e6 || len(b) > 31e6 || !bytes.Contains(b, asset[:4096]) {
		t.Fatalf("drainapp30's binary is %.1f MB (asset in it: %t), want ~30 MB holding its asset",
			float64(len(b))/1e6, bytes.Contains(b, asset[:4096]))
	}
}
