package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
)

// answerTimeout bounds one edit: a rollout of a big image on a slow link takes a while.
const answerTimeout = 5 * time.Minute

var afterEdit = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) ms after the edit`)

// measureHotpod runs `hotpod dev` on the workload and times each edit until the new code answers
// through hotpod's own --port-forward.
func (c Config) measureHotpod(ctx context.Context, w *workload, strategy, ns string) ([]sample, error) {
	dir, err := os.MkdirTemp("", "hotpod-bench-k8s-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mf := filepath.Join(dir, "deploy.yaml")
	if err := os.WriteFile(mf, []byte(w.manifest(manifest.KoPrefix+w.importPath)), 0o644); err != nil {
		return nil, err
	}
	ship := map[string]string{Full: "full", UPX: "raw"}[strategy]
	if ship == "" {
		ship = "auto"
	}
	args := []string{"dev", "-f", mf, "-n", ns, "--output", "json", "--ship", ship,
		"--port-forward", "0:8080", "--default-repo", c.Repo, "--base-image", c.Base}
	if strategy == UPX {
		args = append(args, "--post-build", "upx -q -1")
	}
	local := 0
	if strategy == Local {
		// The floor: the same go build and a process restart on this machine, no cluster.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		local = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		args = []string{"dev", "--local", "--output", "json", "--ready", fmt.Sprintf("http://127.0.0.1:%d/healthz", local)}
	}
	cmd := exec.CommandContext(ctx, c.Hotpod, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", local))
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
	addr := fmt.Sprintf("127.0.0.1:%d", local)
	if strategy != Local {
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
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp))), hotpodMS: e.Ready.EditToReady, bytes: int64(e.Ready.BytesSent)}
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

// measureImage is the loop without hotpod: rebuild the image, push it, roll the Deployment, and
// wait for a pod of the new image to answer. For the Dockerfile variants each build runs in a
// fresh context (docker.go).
func (c Config) measureImage(ctx context.Context, w *workload, ns, strategy string) ([]sample, error) {
	platforms, err := c.Kube.Platforms(ctx)
	if err != nil {
		return nil, err
	}
	cacheDir, err := agentbin.DefaultDir()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "hotpod-bench-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	b := &appimage.Builder{Dir: w.dir, Base: c.Base, Repo: c.Repo, Agents: &agentbin.Cache{Dir: cacheDir},
		Options: build.Options{LDFlags: "-s -w"}, Platform: platforms[0], WorkDir: work}
	var contexts *dockerContexts
	if isDocker(strategy) {
		if contexts, err = newDockerContexts(ctx, strategy, w.dir, work); err != nil {
			return nil, err
		}
	}
	first := true
	deploy := func() (appimage.Result, error) {
		if contexts != nil {
			dir, env, ldflags, err := contexts.next(first)
			if err != nil {
				return appimage.Result{}, err
			}
			defer os.RemoveAll(dir)
			b.Dir, b.Options.Env, b.Options.LDFlags = dir, env, ldflags
		}
		first = false
		res, err := b.Build(ctx, w.importPath)
		if err != nil {
			return res, err
		}
		objs, err := manifest.Read(strings.NewReader(w.manifest(res.Built.Ref)), "bench")
		if err != nil {
			return res, err
		}
		_, err = c.Kube.ApplyObjects(ctx, ns, objs)
		return res, err
	}
	if _, err := deploy(); err != nil {
		return nil, err
	}
	var out []sample
	for i := 0; i <= c.Iterations; i++ {
		stamp, err := w.edit()
		if err != nil {
			return nil, err
		}
		res, err := deploy()
		if err != nil {
			return nil, err
		}
		pod, err := c.readyPod(ctx, ns, "app=bench-"+w.name, res.Built.Ref)
		if err != nil {
			return nil, err
		}
		at, err := c.answerThrough(ctx, ns, pod, stamp)
		if err != nil {
			return nil, err
		}
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp))), bytes: res.AppLayerBytes, appMS: c.appSays(ctx, ns, pod)}
		if i > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// appSays is the app's own edit→listening from the last such line of pod's log (0 if none).
func (c Config) appSays(ctx context.Context, ns, pod string) float64 {
	logs, err := c.Kube.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return 0
	}
	m := afterEdit.FindAllStringSubmatch(string(logs), -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return v
}

// readyPod waits for a Ready pod running image and returns its name.
func (c Config) readyPod(ctx context.Context, ns, selector, image string) (string, error) {
	deadline := time.Now().Add(answerTimeout)
	for time.Now().Before(deadline) {
		pods, err := c.Kube.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return "", err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != image {
				continue
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					return p.Name, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("no ready pod runs %s after %s", image, answerTimeout)
}

// tail keeps the last lines of a stream for error messages: one goroutine adds what hotpod
// writes while another may be reporting an error with them.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 10 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
