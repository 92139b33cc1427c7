package workdir_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/workdir"
)

// The directory of a process that is gone is removed; this process's own, and anything not
// named like a work directory, stay.
func TestSweepRemovesOnlyDeadProcessesDirs(t *testing.T) {
	root := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, fmt.Sprintf("hotpod-dev-%d-123", dead.Process.Pid))
	mine := filepath.Join(root, fmt.Sprintf("hotpod-dev-%d-456", os.Getpid()))
	other := filepath.Join(root, "notes")
	for _, d := range []string{stale, mine, other} {
		if err := os.MkdirAll(filepath.Join(d, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	workdir.Sweep(root)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the dead process's directory is still there (%v)", err)
	}
	for _, d := range []string{mine, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

func TestNewNamesTheProcess(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := workdir.New("hotpod-test")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != workdir.Root() || !strings.HasPrefix(filepath.Base(dir), fmt.Sprintf("hotpod-test-%d-", os.Getpid())) {
		t.Fatalf("work directory %s", dir)
	}
}
