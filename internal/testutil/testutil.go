// Package testutil holds the helpers several packages' tests share.
package testutil

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hotpod/hotpod/internal/report"
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

// Events decodes the lines of hotpod's --output json read from r (report's schema, through
// report.Decode) onto the returned channel, which is closed at the end of r. A line that is not
// an event fails t (until t's cleanup starts: a process still writing after its test is not
// that test's failure). Each line also goes to log, when it is not nil, for a failure's output.
func Events(t testing.TB, r io.Reader, log io.Writer) <-chan report.Event {
	var (
		mu   sync.Mutex
		over bool
	)
	t.Cleanup(func() {
		mu.Lock()
		over = true
		mu.Unlock()
	})
	events := make(chan report.Event, 256)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if log != nil {
				fmt.Fprintf(log, "event: %s\n", sc.Bytes())
			}
			e, err := report.Decode(sc.Bytes())
			if err != nil {
				mu.Lock()
				if !over {
					t.Errorf("hotpod wrote a line that is not an event: %q: %v", sc.Text(), err)
				}
				mu.Unlock()
				continue
			}
			events <- e
		}
	}()
	return events
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
