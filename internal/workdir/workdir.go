// Package workdir makes hotpod's temporary directories. A hotpod killed outright (SIGKILL, a
// closed terminal) cannot remove its own, so each is named after the process that made it, and
// the next hotpod removes those whose process is gone.
package workdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// New makes a directory for this process, named prefix-PID-*, under Root(), after removing the
// directories of hotpod processes that no longer run.
func New(prefix string) (string, error) {
	root := Root()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("work directory: %w", err)
	}
	Sweep(root)
	return os.MkdirTemp(root, fmt.Sprintf("%s-%d-", prefix, os.Getpid()))
}

// Root holds the work directories of this user's hotpod processes.
func Root() string {
	return filepath.Join(os.TempDir(), "hotpod-"+strconv.Itoa(os.Getuid()))
}

// Sweep removes the directories under root whose process (the PID in their name) has exited.
func Sweep(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if len(parts) < 3 || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(root, e.Name()))
	}
}

// alive reports whether process pid exists (a reused PID keeps a stale directory a while
// longer, which is harmless).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Remove removes dir, made by New, and Root() too when no other work directory is left in it.
func Remove(dir string) error {
	err := os.RemoveAll(dir)
	os.Remove(filepath.Dir(dir)) // fails, as it should, while another hotpod's directory is there
	return err
}
