package incluster_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/bench/incluster"
	"github.com/hotpod/hotpod/internal/testutil"
)

const app = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "VERSION") })
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
`

func tarOf(t *testing.T, files map[string]string) io.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// answer polls the app until it answers want.
func answer(t *testing.T, port int, want string) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if last = string(b); last == want {
			return
		}
	}
	t.Fatalf("the app never answered %q (last: %s)", want, last)
}

// The real loop: changed sources synced, compiled by a real go build, the process replaced; a
// compile error keeps the running app; paths outside the sources are refused.
func TestSyncRebuildsAndRestarts(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/app\n\ngo 1.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(strings.Replace(app, "VERSION", "one", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	appPort, ctlPort := testutil.FreePort(t), testutil.FreePort(t)
	t.Setenv("PORT", fmt.Sprint(appPort))
	var log testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- incluster.Run(t.Context(), incluster.Config{Src: src, Package: ".", Go: goCmd,
			Flags: []string{"-trimpath"}, Out: filepath.Join(t.TempDir(), "app"),
			Listen: fmt.Sprintf("127.0.0.1:%d", ctlPort), Log: &log})
	}()
	t.Cleanup(func() { <-done }) // t.Context() ends first: Run stops the app
	answer(t, appPort, "one")
	sync := func(files map[string]string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", ctlPort, incluster.PathSync), "application/x-tar", tarOf(t, files))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := sync(map[string]string{"main.go": strings.Replace(app, "VERSION", "two", 1)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sync: %s: %s", resp.Status, body)
	}
	var res incluster.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Files != 1 || res.BuildMS <= 0 {
		t.Fatalf("sync result %s (%v)", body, err)
	}
	answer(t, appPort, "two")

	resp, body = sync(map[string]string{"main.go": "package main\n\nfunc main() { undefined() }\n"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "undefined") {
		t.Fatalf("compile error: %s: %s", resp.Status, body)
	}
	answer(t, appPort, "two")

	resp, body = sync(map[string]string{"../escape.go": "x"})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "outside the sources") {
		t.Fatalf("escaping path: %s: %s", resp.Status, body)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(src), "escape.go")); err == nil {
		t.Fatal("a file was written outside the sources")
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("Run returned early: %v\n%s", err, log.String())
	default:
	}
}
