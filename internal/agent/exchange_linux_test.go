package agent

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// exchangeFiles swaps two names' files (their inodes, not copies of their bytes), or says it
// cannot; on the architectures it knows, on the test's filesystem, it can.
func TestExchangeFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, f := range []string{a, b} {
		if err := os.WriteFile(f, []byte(filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inoA, inoB := inode(t, a), inode(t, b)
	err := exchangeFiles(a, b)
	if _, known := sysRenameat2[runtime.GOARCH]; !known {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("exchange on linux/%s: %v, want ErrUnsupported", runtime.GOARCH, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if got, _ := os.ReadFile(a); string(got) != "b" || inode(t, a) != inoB || inode(t, b) != inoA {
		t.Fatalf("after the exchange a holds %q (inode %d, was b's %d): not exchanged", got, inode(t, a), inoB)
	}
	if err := exchangeFiles(a, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("an exchange with a missing file succeeded")
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
