package agent_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
)

func syncFixture(t *testing.T, syncDir string) *fixture {
	t.Helper()
	return startWith(t, t.TempDir(), func(cfg *agent.Config) { cfg.SyncDir = syncDir })
}

func wantFile(t *testing.T, path, content string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != content {
		t.Fatalf("%s: %q, %v; want %q", path, b, err, content)
	}
}

// Files land in the sync dir atomically, parents made, modes kept, the app left running.
func TestPutAndDeleteFiles(t *testing.T) {
	sync := t.TempDir()
	f := syncFixture(t, sync)
	before := f.waitReady(t)
	ctx := t.Context()
	if err := f.client.PutFile(ctx, "index.html", []byte("<h1>v1</h1>")); err != nil {
		t.Fatal(err)
	}
	if err := f.client.PutFile(ctx, "static/css/site css.css", []byte("body{}")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "index.html"), "<h1>v1</h1>")
	wantFile(t, filepath.Join(sync, "static/css/site css.css"), "body{}")
	if err := os.Chmod(filepath.Join(sync, "index.html"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.client.PutFile(ctx, "index.html", []byte("<h1>v2</h1>")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "index.html"), "<h1>v2</h1>")
	if fi, _ := os.Stat(filepath.Join(sync, "index.html")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want the file's own 0600 kept", fi.Mode().Perm())
	}
	if err := f.client.PutFile(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "empty"), "")
	if err := f.client.DeleteFile(ctx, "static"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sync, "static")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("static/ still there: %v", err)
	}
	if err := f.client.DeleteFile(ctx, "never/was"); err != nil {
		t.Fatalf("deleting what is not there: %v", err)
	}
	after := f.waitReady(t)
	if after.PID != before.PID || after.Restarts != 0 {
		t.Fatalf("the app was restarted: %+v → %+v", before, after)
	}
	entries, _ := os.ReadDir(sync)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "empty,index.html" {
		t.Fatalf("sync dir holds %v", names)
	}
}

// A body that does not match its SHA-256 changes nothing.
func TestPutFileVerifiesHash(t *testing.T) {
	sync := t.TempDir()
	f := syncFixture(t, sync)
	if err := os.WriteFile(filepath.Join(sync, "a.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, query := range map[string]string{
		"wrong hash": "sha256=" + strings.Repeat("ab", 32),
		"no hash":    "",
		"bad hash":   "sha256=xyz",
	} {
		code, msg := rawRequest(t, f, http.MethodPut, agentapi.PathFiles+"a.txt?"+query, "new")
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, code, msg)
		}
	}
	wantFile(t, filepath.Join(sync, "a.txt"), "old")
	if entries, _ := os.ReadDir(sync); len(entries) != 1 {
		t.Fatalf("left-over files: %v", entries)
	}
}

// rawRequest sends a request as is (no client-side checks) with the session token.
func rawRequest(t *testing.T, f *fixture, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.client.Base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path[:strings.IndexByte(path+"?", '?')] // keep escapes and dots as sent
	req.Header.Set(agentapi.TokenHeader, "Bearer "+token)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// No request writes or deletes outside the sync dir: not with .., not with an absolute path, not
// through a symlink that points out.
func TestFilePathsCannotEscape(t *testing.T) {
	root := t.TempDir()
	sync := filepath.Join(root, "sync")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{sync, outside, filepath.Join(sync, "inner")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(sync, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("inner", filepath.Join(sync, "in")); err != nil {
		t.Fatal(err)
	}
	f := syncFixture(t, sync)
	sum := "sha256=" + fmt.Sprintf("%x", sha([]byte("x")))
	for _, p := range []string{
		"..%2Foutside%2Fvictim",
		"%2E%2E/outside/victim",
		"inner%2F..%2F..%2Foutside%2Fvictim",
		"%2Fetc%2Fpasswd",
		"out/victim",
		"out/new/file",
		"a%00b",
	} {
		for _, m := range []string{http.MethodPut, http.MethodDelete} {
			code, msg := rawRequest(t, f, m, agentapi.PathFiles+p+"?"+sum, "x")
			if code != http.StatusForbidden {
				t.Errorf("%s %s: %d %s", m, p, code, msg)
			}
		}
	}
	wantFile(t, filepath.Join(outside, "victim"), "keep")
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("written outside: %v", entries)
	}
	// A symlink that stays inside is followed.
	if err := f.client.PutFile(t.Context(), "in/through-link", []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "inner", "through-link"), "x")
	// The client refuses such paths before sending them.
	for _, p := range []string{"../x", "/etc/passwd", "a//b", "./a", "a/", ""} {
		if err := f.client.PutFile(t.Context(), p, nil); err == nil {
			t.Errorf("client sent %q", p)
		}
	}
}

// The usual dev container: a read-only root, the sync dir an emptyDir (the only writable place).
// Seeding and syncing write nothing anywhere else.
func TestSyncOnReadOnlyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs")
	}
	root := t.TempDir()
	mount := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Skipf("mount %v: %v %s", args, err, out)
		}
	}
	mount("-t", "tmpfs", "tmpfs", root)
	t.Cleanup(func() { exec.Command("umount", "-R", "-l", root).Run() })
	seed := filepath.Join(root, "kodata")
	sync := filepath.Join(root, "var", "run", "ko")
	for _, d := range []string{filepath.Join(seed, "static"), sync} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(seed, "static", "app.js"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	mount("-t", "tmpfs", "tmpfs", sync)
	mount("-o", "remount,ro", root)
	if err := os.WriteFile(filepath.Join(root, "probe"), nil, 0o644); err == nil {
		t.Fatal("the root is writable")
	}
	if err := agent.SeedDir(seed, sync); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "static", "app.js"), "v1")
	f := syncFixture(t, sync)
	if err := f.client.PutFile(t.Context(), "static/app.js", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := f.client.PutFile(t.Context(), "new/dir/data.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "static", "app.js"), "v2")
	wantFile(t, filepath.Join(sync, "new", "dir", "data.json"), "{}")
	// A second start keeps what was synced.
	if err := agent.SeedDir(seed, sync); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "static", "app.js"), "v2")
}

// SeedDir copies a tree once; a copy cut short is made again.
func TestSeedDir(t *testing.T) {
	seed, sync := t.TempDir(), filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(seed, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "a", "b", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "top.txt"), []byte("top"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("top.txt", filepath.Join(seed, "link")); err != nil {
		t.Fatal(err)
	}
	if err := agent.SeedDir(seed, sync); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "a", "b", "run.sh"), "#!/bin/sh\n")
	if fi, _ := os.Stat(filepath.Join(sync, "a", "b", "run.sh")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if l, err := os.Readlink(filepath.Join(sync, "link")); err != nil || l != "top.txt" {
		t.Fatalf("link %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(sync, ".hotpod-seeding")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the seeding marker is left")
	}
	// Seeded: an edit stays.
	if err := os.WriteFile(filepath.Join(sync, "top.txt"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := agent.SeedDir(seed, sync); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "top.txt"), "edited")
	// Cut short (the marker is there): copied again.
	if err := os.WriteFile(filepath.Join(sync, ".hotpod-seeding"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := agent.SeedDir(seed, sync); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(sync, "top.txt"), "top")
}

// Without --sync-dir the file API says how to get one.
func TestFilesWithoutSyncDir(t *testing.T) {
	f := start(t)
	err := f.client.PutFile(t.Context(), "a", []byte("x"))
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound || !strings.Contains(ae.Message, "--sync-dir") {
		t.Fatalf("got %v", err)
	}
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
