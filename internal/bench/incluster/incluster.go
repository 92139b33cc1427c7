// Package incluster is the comparator for the original article's strategy E, run by `hotpod
// bench --strategy incluster`: the sources live in the container, which holds a Go toolchain;
// each edit sends the changed files there, they are compiled inside the container (with its CPU
// limit and its own build cache) and the process is restarted. No hotpod agent is involved.
package incluster

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// Config says where the sources are and how to build and run them.
type Config struct {
	Src     string   // the module's root; synced files are relative to it
	Package string   // the main package, relative to Src ("." or ./cmd/x)
	Go      string   // the go command
	Flags   []string // go build flags (-trimpath, -ldflags=...)
	Out     string   // where the binary is written and run from
	Listen  string   // the control address, loopback only (reached through a port-forward)
	Log     io.Writer
}

// Result answers a sync: how long the in-container build and the restart took.
type Result struct {
	Files     int     `json:"files"`
	BuildMS   float64 `json:"build_ms"`
	RestartMS float64 `json:"restart_ms"`
}

// PathSync is the control endpoint: POST a tar of changed files (paths relative to Src).
const PathSync = "/sync"

// Server builds and runs the app, and rebuilds it on each sync.
type Server struct {
	cfg  Config
	mu   sync.Mutex // one sync at a time
	proc *exec.Cmd
	done chan struct{}
}

// Run builds the app, starts it, and serves syncs until ctx ends; then it stops the app.
func Run(ctx context.Context, cfg Config) error {
	s := &Server{cfg: cfg}
	t := time.Now()
	if out, err := s.build(ctx); err != nil {
		return fmt.Errorf("first build: %w\n%s", err, out)
	}
	s.logf("first build in %s", time.Since(t).Round(time.Millisecond))
	if err := s.start(); err != nil {
		return err
	}
	defer s.stop()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(ctx)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler serves PathSync.
func (s *Server) Handler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathSync, func(w http.ResponseWriter, r *http.Request) {
		res, out, err := s.Sync(ctx, r.Body)
		if err != nil {
			http.Error(w, fmt.Sprintf("%v\n%s", err, out), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res) //nolint:errcheck // the client hung up
	})
	return mux
}

// Sync writes the files of the tar stream r into the sources, rebuilds and restarts the app. A
// failed build leaves the running app alone and returns the compiler's output.
func (s *Server) Sync(ctx context.Context, r io.Reader) (Result, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res Result
	n, err := extract(r, s.cfg.Src)
	if err != nil {
		return res, "", err
	}
	res.Files = n
	t := time.Now()
	if out, err := s.build(ctx); err != nil {
		return res, out, err
	}
	res.BuildMS = agentapi.Ms(time.Since(t))
	t = time.Now()
	s.stop()
	if err := s.start(); err != nil {
		return res, "", err
	}
	res.RestartMS = agentapi.Ms(time.Since(t))
	s.logf("synced %d files: build %.0f ms, restart %.1f ms", n, res.BuildMS, res.RestartMS)
	return res, "", nil
}

// extract writes the regular files of a tar stream under dir, refusing paths that leave it.
func extract(r io.Reader, dir string) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("sync: bad tar stream: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return n, fmt.Errorf("sync: %q is outside the sources", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return n, err
		}
		// Write beside and rename, as an editor saves: the go command never sees half a file.
		tmp := path + ".sync"
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return n, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(tmp)
			return n, fmt.Errorf("sync %s: %w", h.Name, err)
		}
		n++
	}
}

func (s *Server) build(ctx context.Context) (string, error) {
	args := append(append([]string{"build", "-o", s.cfg.Out}, s.cfg.Flags...), s.cfg.Package)
	cmd := exec.CommandContext(ctx, s.cfg.Go, args...)
	cmd.Dir = s.cfg.Src
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *Server) start() error {
	cmd := exec.Command(s.cfg.Out)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.cfg.Out, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // a crash shows in the app's own output
		close(done)
	}()
	s.proc, s.done = cmd, done
	return nil
}

// stop ends the app: SIGTERM, then SIGKILL after 5 s.
func (s *Server) stop() {
	if s.proc == nil {
		return
	}
	syscall.Kill(-s.proc.Process.Pid, syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.proc.Process.Pid, syscall.SIGKILL) //nolint:errcheck
		<-s.done
	}
	s.proc = nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Log != nil {
		fmt.Fprintf(s.cfg.Log, "incluster: "+format+"\n", args...)
	}
}
