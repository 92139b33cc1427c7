// Package testutil holds the helpers several packages' tests share.
package testutil

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for a process's stdout and a test reading it at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Golden compares got with the file at path, or rewrites the file when the test runs with
// -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", path, got)
	}
}

// Event is any line of `hotpod dev --output json`, as the tests read them.
type Event struct {
	Event       string   `json:"event"`
	Service     string   `json:"service"`
	Pod         string   `json:"pod"`
	Iteration   int      `json:"iteration"`
	EditToReady float64  `json:"edit_to_ready_ms"`
	BuildMS     float64  `json:"build_ms"`
	ShipMS      float64  `json:"ship_ms"`
	RestartMS   float64  `json:"restart_ms"`
	ReadyMS     float64  `json:"ready_ms"`
	BytesSent   int      `json:"bytes_sent"`
	BinaryBytes int      `json:"binary_bytes"`
	Method      string   `json:"method"`
	Files       []string `json:"files"`
	AfterMS     float64  `json:"after_ms"`
	SHA256      string   `json:"sha256"`
	Error       string   `json:"error"`
	ExitCode    *int     `json:"exit_code"`
	LastOutput  []string `json:"last_output"`
	Message     string   `json:"message"`
}

// RunWithBinary is a TestMain body for tests of a command: it builds the Go package pkg into a
// temporary directory, sets *bin to its path, runs the tests and cleans up.
func RunWithBinary(m *testing.M, pkg string, bin *string) int {
	dir, err := os.MkdirTemp("", "hotpod-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	abs, err := filepath.Abs(pkg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*bin = filepath.Join(dir, filepath.Base(abs))
	if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
		return 1
	}
	return m.Run()
}
