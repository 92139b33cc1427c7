package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// gobuildStrategy is the floor users know: for each edit a plain `go build -o` with the go
// command's defaults (the environment as it is: no -trimpath, symbols and DWARF kept, cgo as the
// machine has it, Go's own GOGC) and the app restarted on this machine, the old process group
// killed at once with SIGKILL (air's default, send_interrupt = false). No watcher and no
// debounce: the build starts as soon as the edit is written. No agent, no cluster.
type gobuildStrategy struct{}

func (gobuildStrategy) Name() string        { return GoBuild }
func (gobuildStrategy) Cluster() bool       { return false }
func (gobuildStrategy) HotpodReports() bool { return false }
func (gobuildStrategy) Unavailable() string { return "" }

func (gobuildStrategy) Measure(ctx context.Context, c Config, w *workload, _ string) ([]sample, error) {
	dir, err := os.MkdirTemp("", "hotpod-bench-gobuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, w.name)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	build := func() error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Dir(w.file)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
		return nil
	}
	var app *localApp
	defer func() {
		if app != nil {
			app.kill()
		}
	}()
	if err := build(); err != nil {
		return nil, err
	}
	if app, err = startLocalApp(bin, w.dir, port); err != nil {
		return nil, err
	}
	hot := make(chan struct{})
	close(hot)
	if _, err := awaitStamp(ctx, base, 0, answerTimeout, hot); err != nil {
		return nil, fmt.Errorf("the first build: %w: %s", err, app.out.String())
	}
	var out []sample
	for i := 0; i <= c.Iterations; i++ {
		stamp, err := w.edit()
		if err != nil {
			return nil, err
		}
		if err := build(); err != nil {
			return nil, err
		}
		app.kill()
		if app, err = startLocalApp(bin, w.dir, port); err != nil {
			return nil, err
		}
		at, err := awaitStamp(ctx, base, stamp, answerTimeout, hot)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, app.out.String())
		}
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp)))}
		if fi, err := os.Stat(bin); err == nil {
			s.bytes = fi.Size() // what the build wrote: the whole binary, every time
		}
		select {
		case s.appMS = <-app.appMS:
		case <-time.After(2 * time.Second):
		}
		if i > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// localApp is the workload's binary running on this machine in a process group of its own, its
// log read for the "ms after the edit" line.
type localApp struct {
	cmd   *exec.Cmd
	out   tail
	appMS chan float64
	done  chan struct{}
}

func startLocalApp(bin, dir string, port int) (*localApp, error) {
	a := &localApp{cmd: exec.Command(bin), appMS: make(chan float64, 1), done: make(chan struct{})}
	a.cmd.Dir = dir
	a.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w := io.Pipe()
	a.cmd.Stdout, a.cmd.Stderr = w, w
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = a.cmd.Wait()
		w.Close()
		close(a.done)
	}()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			a.out.add(sc.Text())
			if m := afterEdit.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				select {
				case a.appMS <- v:
				default:
				}
			}
		}
	}()
	return a, nil
}

// kill ends the app's whole process group at once and waits for it.
func (a *localApp) kill() {
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}
