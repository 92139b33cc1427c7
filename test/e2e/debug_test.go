package e2e_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/go-delve/delve/service/rpc2"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

// debugManifest runs hello as locked down as a restricted namespace asks: non-root (65532), a
// read-only root, no privilege escalation, every capability dropped and the runtime's default
// seccomp profile. dlv traces its own child, which needs none of them.
const debugManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 2
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: hello
        image: ko://example.com/hello
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
        livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1, failureThreshold: 1}
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`

// TestDevDebugBreakpointsSurviveSwaps: hotpod dev --debug serves the pod's Delve on a local port
// through its agent; a dlv connect client (Delve's own rpc2 client) and then an IDE's (DAP) each
// set a breakpoint in the handler, hit it through the app's port-forward, and after an edit hit
// it again in the new code on the same connection, without setting it again. The pod is paused
// meanwhile, reported as such, and never restarted by the kubelet.
func TestDevDebugBreakpointsSurviveSwaps(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/hello.yaml": debugManifest})
	src := filepath.Join(dir, "main.go") // as the binary names it: --debug builds without -trimpath
	line := lineOf(t, src, "fmt.Fprintln(w, greeting)")
	debugPort, appPort := testutil.FreePort(t), testutil.FreePort(t)
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image", env.Registry+"/hotpod/base-nonroot:latest",
		"--debug", "--debug-port", fmt.Sprint(debugPort), "--port-forward", fmt.Sprintf("%d:8080", appPort))
	s.await(report.KindReady, 1)
	// The first ready pod goes under Delve; the instructions come once.
	var infos []string
	for j := strings.Join(infos, "\n"); !strings.Contains(j, "debugging hello in pod") || !strings.Contains(j, "dlv connect"); j = strings.Join(infos, "\n") {
		infos = append(infos, s.awaitAny(report.KindInfo).Info.Message)
	}
	all := strings.Join(infos, "\n")
	for _, want := range []string{fmt.Sprintf("dlv connect 127.0.0.1:%d", debugPort), `"mode": "remote"`, fmt.Sprintf(`"port": %d`, debugPort)} {
		if !strings.Contains(all, want) {
			t.Fatalf("the session's messages do not say %q:\n%s", want, all)
		}
	}
	pod := podOf(t, all)
	get := func() <-chan string {
		ch := make(chan string, 1)
		go func() {
			c := http.Client{Timeout: 3 * time.Minute}
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", appPort))
			if err != nil {
				ch <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			ch <- strings.TrimSpace(string(b))
		}()
		return ch
	}
	within := func(what string, c <-chan string) string {
		select {
		case v := <-c:
			return v
		case <-time.After(3 * time.Minute):
			t.Fatalf("no %s within 3 minutes", what)
		}
		return ""
	}

	// dlv connect: a breakpoint on the handler by function name.
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", debugPort), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := rpc2.NewClientFromConn(conn)
	if _, err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	bp, err := c.CreateBreakpoint(&api.Breakpoint{FunctionName: "main.main.func1"})
	if err != nil {
		t.Fatal(err)
	}
	states := c.Continue()
	rpcHit := func(want string) int {
		t.Helper()
		body := get()
		var st *api.DebuggerState
		select {
		case st = <-states:
		case <-time.After(3 * time.Minute):
			t.Fatal("dlv connect: no stop at the breakpoint within 3 minutes")
		}
		if st.Err != nil || st.CurrentThread == nil || st.CurrentThread.Breakpoint == nil || st.CurrentThread.Breakpoint.ID != bp.ID {
			t.Fatalf("dlv connect: state %+v (err %v), want a stop at breakpoint %d", st.CurrentThread, st.Err, bp.ID)
		}
		if st.CurrentThread.File != src {
			t.Fatalf("dlv connect: stopped in %s:%d, want %s (the local path: no -trimpath)", st.CurrentThread.File, st.CurrentThread.Line, src)
		}
		if e := s.awaitAny(report.KindPaused).Paused; e.Pod != pod {
			t.Fatalf("paused event for %s, want %s", e.Pod, pod)
		}
		states = c.Continue()
		if got := within("answer", body); got != want {
			t.Fatalf("the app answered %q, want %q", got, want)
		}
		return st.Pid
	}
	pid1 := rpcHit("hello from hotpod")
	s.edit("hello from hotpod", "hello v2")
	r := s.await(report.KindReady, 1)[0].Ready
	t.Logf("edit→ready under the debugger (dlv connect attached, its run going on in the new binary): %.0f ms (build %.0f, ship %.0f, restart %.0f, ready %.0f)",
		r.EditToReady, r.BuildMS, r.ShipMS, r.RestartMS, r.ReadyMS)
	if pid2 := rpcHit("hello v2"); pid2 == pid1 {
		t.Fatalf("the breakpoint stopped pid %d again: the new binary should run in a new process", pid1)
	}
	// Let go of the app: stop, clear, and leave it running.
	select {
	case <-states:
	default:
	}
	if _, err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClearBreakpoint(bp.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(true); err != nil {
		t.Fatal(err)
	}

	// An IDE: DAP, remote attach, a breakpoint by file:line.
	dconn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", debugPort), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDAP(t, dconn)
	const wait = 3 * time.Minute
	d.Attach(wait)
	bps := d.SetBreakpoints(src, []int{line}, wait)
	if len(bps) != 1 || !bps[0].Verified {
		t.Fatalf("DAP setBreakpoints at %s:%d: %+v, want one verified", src, line, bps)
	}
	d.ConfigurationDone(wait)
	dapHit := func(want string) {
		t.Helper()
		body := get()
		ev := d.Stopped(wait)
		if ev.Body.Reason != "breakpoint" || len(ev.Body.HitBreakpointIds) != 1 || ev.Body.HitBreakpointIds[0] != bps[0].Id {
			t.Fatalf("DAP stopped: %+v, want breakpoint %d", ev.Body, bps[0].Id)
		}
		if fr := d.TopFrame(ev.Body.ThreadId, wait); fr.Line != line || fr.Source == nil || fr.Source.Path != src {
			t.Fatalf("DAP top frame %s at %v:%d, want %s:%d", fr.Name, fr.Source, fr.Line, src, line)
		}
		d.Continue(ev.Body.ThreadId, wait)
		if got := within("answer", body); got != want {
			t.Fatalf("the app answered %q, want %q", got, want)
		}
	}
	dapHit("hello v2")
	s.edit("hello v2", "hello v3")
	r = s.await(report.KindReady, 1)[0].Ready
	t.Logf("edit→ready under the debugger (DAP attached, its run going on in the new binary): %.0f ms (build %.0f, ship %.0f, restart %.0f, ready %.0f)",
		r.EditToReady, r.BuildMS, r.ShipMS, r.RestartMS, r.ReadyMS)
	dapHit("hello v3")

	// Paused for a while and unready meanwhile, the pod was never restarted.
	for _, p := range env.Pods(t, ns, "app=hello") {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Fatalf("pod %s container %s restarted %d times", p.Name, cs.Name, cs.RestartCount)
			}
		}
	}
	s.interrupt()
}

func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s has no %q", file, text)
	return 0
}

// podOf reads the pod named in "debugging hello in pod NAME: ...".
func podOf(t *testing.T, messages string) string {
	t.Helper()
	_, after, ok := strings.Cut(messages, "debugging hello in pod ")
	if !ok {
		t.Fatalf("no pod named in %q", messages)
	}
	name, _, _ := strings.Cut(after, ":")
	return name
}
