package devloop

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/ship"
)

// Loops that share Builds never build more at once than it has slots: three loops, real go
// builds of one module, one slot. Each build's post-build step takes a lock directory that a
// second build running at the same time would find taken, and fails.
func TestSharedBuildsBound(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module example.com/m\n\ngo 1.24\n",
		"main.go": "package main\n\nfunc main() {}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lock := filepath.Join(t.TempDir(), "lock")
	// mkdir fails when the directory exists: two builds overlapped.
	post := []string{"sh", "-c", `mkdir "$0" || { echo "another build runs" >&2; exit 1; }; sleep 0.3; rmdir "$0"`, lock}
	slots := make(chan struct{}, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		l := &Loop{Service: "s/" + string(rune('a'+i)), WorkDir: t.TempDir(), Builds: slots, Shipper: ship.New(ship.Auto),
			Builder: &build.Builder{Dir: dir, Package: ".", Options: build.Options{PostBuild: post}}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.build(t.Context(), 2)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a build overlapped another though the loops share one slot: %v", err)
		}
	}
	if len(slots) != 0 {
		t.Fatalf("%d slots still held after the builds", len(slots))
	}
}
