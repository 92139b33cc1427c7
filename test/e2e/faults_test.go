package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
)

// Faults injected into a running session on the real cluster. Each test logs its figures (time
// to recover, the lines the user saw, what was lost) for docs/reliability.md. The cluster is
// shared: a component is restarted only inside a test, one at a time (the tests are not
// parallel).

// restartComponent restarts one component of the cluster (hack/cluster.sh restart) and returns
// how long it was away: from the stop to healthy again.
func restartComponent(t *testing.T, name string) time.Duration {
	t.Helper()
	away, err := restart(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return away
}

func restart(ctx context.Context, name string) (time.Duration, error) {
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "../../hack/cluster.sh", "restart", name).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("hack/cluster.sh restart %s: %v\n%s", name, err, out)
	}
	return time.Since(t0), nil
}

// awaitLost reads events until the session has said, for n pods, that it lost its connection to
// their agents, and returns what it read. A shutting-down API server stops listening first but
// serves the connections it has for a while: the port-forwards end only when the process does.
func awaitLost(s *devSession, n int) []report.Event {
	s.t.Helper()
	var seen []report.Event
	lost := 0
	deadline := time.After(2 * time.Minute)
	for lost < n {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("hotpod ended during the fault; events:\n  %s", lines(seen))
			}
			seen = append(seen, e)
			if e.Kind == report.KindInfo && strings.Contains(e.Info.Message, "agent connection lost") {
				lost++
			}
		case <-deadline:
			s.t.Fatalf("the session did not say it lost its agents; events:\n  %s", lines(seen))
		}
	}
	return seen
}

// line is an event as the user reads it in --output json.
func line(e report.Event) string { return e.Kind + " " + e.String() }

// lines is events as the user reads them, one a line.
func lines(events []report.Event) string {
	var out []string
	for _, e := range events {
		out = append(out, line(e))
	}
	return strings.Join(out, "\n  ")
}

// landEdit edits main.go and reads the session's events until each of n pods is ready on a
// newer iteration than any seen before. It returns every event read since the last call (what
// the user saw across the fault) and how long the edit took to land. A crash or a build
// failure fails the test; ship_failed and ship_slow are what the user saw, and are returned.
func landEdit(s *devSession, seenIter *int, from, to string, n int) ([]report.Event, time.Duration) {
	s.t.Helper()
	var seen []report.Event
	// What arrived while the fault was injected.
	for drained := false; !drained; {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("hotpod ended during the fault; events: %v", seen)
			}
			seen = append(seen, e)
		default:
			drained = true
		}
	}
	t0 := time.Now()
	s.edit(from, to)
	ready := map[string]bool{}
	deadline := time.After(4 * time.Minute)
	for len(ready) < n {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("hotpod ended before the edit landed; events: %v", seen)
			}
			seen = append(seen, e)
			switch e.Kind {
			case report.KindCrashed, report.KindBuildFailed:
				s.t.Fatalf("got %s", line(e))
			case report.KindReady:
				if e.Ready.Iteration > *seenIter {
					ready[e.Ready.Pod] = true
				}
			}
		case <-deadline:
			s.t.Fatalf("the edit did not land on %d pods within 4 minutes (%d did); events: %v", n, len(ready), seen)
		}
	}
	for _, e := range seen {
		if e.Kind == report.KindReady && e.Ready.Iteration > *seenIter {
			*seenIter = e.Ready.Iteration
		}
	}
	return seen, time.Since(t0)
}

// assertCleanedUp checks that after Ctrl-C nothing hotpod applied for the hello project is left.
func assertCleanedUp(t *testing.T, env *e2e.Env, ns string) {
	t.Helper()
	cs := env.Kube.Clientset
	if _, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the deployment after Ctrl-C: %v, want not found", err)
	}
	if _, err := cs.CoreV1().Services(ns).Get(t.Context(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the service after Ctrl-C: %v, want not found", err)
	}
	secrets, err := cs.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "hotpod.dev/session"})
	if err != nil || len(secrets.Items) != 0 {
		t.Fatalf("session secrets left: %v %v", secrets, err)
	}
	env.Eventually(t, time.Minute, "pods gone", func() error {
		if n := len(env.Pods(t, ns, "")); n != 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
}

// A control-plane or node component restarted mid-session (two replicas): the session goes on,
// an edit saved while the API server is down lands once it is back, the next edit lands on both
// pods in place (no pod replaced or restarted, nothing lost), and
// Ctrl-C still deletes everything it applied.
func TestFaultComponentRestart(t *testing.T) {
	for _, component := range []string{"kube-apiserver", "kubelet"} {
		t.Run(component, func(t *testing.T) {
			env := e2e.Setup(t)
			s := startDev(t, env, 2, "scratch", false)
			iter := 0
			for _, e := range s.await(report.KindReady, 2) {
				iter = max(iter, e.Ready.Iteration)
			}
			s.allSay(2, "hello from hotpod")
			before := s.pods()

			from := "hello from hotpod"
			var away time.Duration
			if component == "kube-apiserver" {
				// An edit saved while the API server is away (the session has lost its agents) lands
				// once it is back.
				var err error
				var back time.Time
				done := make(chan struct{})
				go func() { away, err = restart(t.Context(), component); back = time.Now(); close(done) }()
				saw := awaitLost(s, 2)
				saved := time.Now()
				more, took := landEdit(s, &iter, from, "hello during the outage", 2)
				saw = append(saw, more...)
				<-done
				if err != nil {
					t.Fatal(err)
				}
				s.allSay(2, "hello during the outage")
				t.Logf("an edit saved once the session had lost its agents landed on both pods %s after it was saved; "+
					"the API server (away %s) was ready again %s after the save; the user saw:\n  %s",
					took.Round(100*time.Millisecond), away.Round(100*time.Millisecond), back.Sub(saved).Round(100*time.Millisecond), lines(saw))
				from = "hello during the outage"
			} else {
				away = restartComponent(t, component)
			}
			saw, took := landEdit(s, &iter, from, "hello after the restart", 2)
			s.allSay(2, "hello after the restart")
			after := s.pods()
			for name, b := range before {
				if a, ok := after[name]; !ok || a.uid != b.uid || a.restarts != 0 {
					t.Fatalf("pod %s was replaced or restarted: before %+v after %+v", name, b, a)
				}
			}
			t.Logf("%s away for %s; the next edit landed on both pods %s after it was saved; the user saw:\n  %s",
				component, away.Round(100*time.Millisecond), took.Round(100*time.Millisecond), lines(saw))

			t0 := time.Now()
			infos := s.interrupt()
			assertCleanedUp(t, env, s.ns)
			t.Logf("Ctrl-C cleaned up in %s: %s", time.Since(t0).Round(100*time.Millisecond), strings.Join(infos, " | "))
		})
	}
}

const sidecarManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ko://example.com/hello
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
      - name: nosy
        image: %s
        command: [busybox, sleep, "3600"]
`

// Another container of the pod shares its network, so it reaches the agent's loopback port: it
// is refused (401) with no token or a wrong one, on every endpoint; it cannot read the token
// (the Secret is mounted into the app's container only); and nothing changed: the app answers as
// before, in the same process (pid, restarts and binary as the agent reports them to the app's
// container, which holds the token), and the next edit lands.
func TestFaultSidecarWithoutToken(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/app.yaml": fmt.Sprintf(sidecarManifest, env.Registry+"/hotpod/base-busybox:latest")})
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image="+env.Registry+"/hotpod/base-busybox:latest")
	iter := s.await(report.KindReady, 1)[0].Ready.Iteration
	pods := env.Pods(t, ns, "app=hello")
	if len(pods) != 1 {
		t.Fatalf("%d pods", len(pods))
	}
	pod := pods[0].Name
	before := s.pods()

	// nosy runs a command in the sidecar: its stdout, and kubectl's stderr in the error only
	// (client-go's log lines there are not the sidecar's output).
	nosy := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), "kubectl", append([]string{"exec", "-n", ns, pod, "-c", "nosy", "--"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return string(out), err
	}
	// The app's own container holds the token: the agent's state as it reports it (a call the
	// sidecar made that got through would change its pid, restarts or binary).
	const agent = "http://127.0.0.1:7878"
	agentState := func() agentapi.Status {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), "kubectl", "exec", "-n", ns, pod, "-c", "hello", "--", "sh", "-c",
			`busybox wget -q -O - --header "Authorization: Bearer $(busybox cat /hotpod/token/token)" `+agent+agentapi.PathStatus).Output()
		var st agentapi.Status
		if err != nil || json.Unmarshal(out, &st) != nil || st.PID == 0 {
			t.Fatalf("the agent's status from the app's container: %v %q", err, out)
		}
		return st
	}
	stBefore := agentState()
	// Raw requests through busybox nc, so the test reads the agent's own status line.
	for _, c := range []struct{ name, method, path, header, body string }{
		{"status, no token", "GET", agentapi.PathStatus, "", ""},
		{"status, wrong token", "GET", agentapi.PathStatus, "Authorization: Bearer wrong\r\n", ""},
		{"update, no token", "POST", agentapi.PathUpdate, "", "not a patch"},
		{"update, wrong token", "POST", agentapi.PathUpdate, "Authorization: Bearer wrong\r\n", "not a patch"},
		{"restart, no token", "POST", agentapi.PathRestart, "", "x"},
	} {
		req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			c.method, c.path, c.header, len(c.body), c.body)
		out, err := nosy("sh", "-c", fmt.Sprintf("printf '%s' | busybox nc -w 20 127.0.0.1 7878", req))
		status, _, _ := strings.Cut(out, "\r\n")
		if !strings.HasPrefix(status, "HTTP/1.1 401 ") {
			t.Fatalf("%s from the sidecar: %v\n%s\nwant a 401", c.name, err, out)
		}
		t.Logf("%s: %s", c.name, status)
	}
	if out, err := nosy("busybox", "cat", "/hotpod/token/token"); err == nil {
		t.Fatalf("the sidecar reads the session token: %q", out)
	}
	s.allSay(1, "hello from hotpod")
	if after := s.pods(); after[pod] != before[pod] {
		t.Fatalf("the pod changed: before %+v after %+v", before[pod], after[pod])
	}
	if st := agentState(); st.PID != stBefore.PID || st.Restarts != stBefore.Restarts || st.SHA256 != stBefore.SHA256 {
		t.Fatalf("the agent's state changed: before %+v after %+v", stBefore, st)
	}
	saw, took := landEdit(s, &iter, "hello from hotpod", "hello past the sidecar", 1)
	for _, e := range saw {
		if e.Kind == report.KindFailed || e.Kind == report.KindCrashed {
			t.Fatalf("the refused calls showed up in the session: %s", line(e))
		}
	}
	s.allSay(1, "hello past the sidecar")
	t.Logf("the next edit landed in %s", took.Round(100*time.Millisecond))
	s.interrupt()
	assertCleanedUp(t, env, ns)
}

const limitedManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ko://example.com/hello
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
        resources: {limits: {memory: 64Mi}}
`

// An edit whose binary outgrows the container's memory limit as it starts (the OOM killer ends
// it during the update): the user sees a crashed line that says the OOM killer ended it, the pod stays (the agent
// survives, the container is not restarted), and the fix lands.
func TestFaultOOMKilledDuringUpdate(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/app.yaml": limitedManifest})
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image=scratch")
	iter := s.await(report.KindReady, 1)[0].Ready.Iteration
	before := s.pods()

	const hog = `hog := make([]byte, 256<<20); for i := range hog { hog[i] = 1 }; addr := ":8080"`
	s.edit(`addr := ":8080"`, hog)
	t0 := time.Now()
	var saw []report.Event
	var crashed *report.Crashed
	for deadline := time.After(4 * time.Minute); crashed == nil; {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatalf("hotpod ended; events:\n  %s", lines(saw))
			}
			saw = append(saw, e)
			switch e.Kind {
			case report.KindCrashed:
				crashed = e.Crashed
			case report.KindReady:
				if e.Ready.Iteration > iter {
					t.Fatalf("the hog was reported ready: %s", line(e))
				}
			}
		case <-deadline:
			t.Fatalf("no crashed line within 4 minutes; events:\n  %s", lines(saw))
		}
	}
	t.Logf("the OOM kill was reported %s after the edit; the user saw:\n  %s", time.Since(t0).Round(100*time.Millisecond), lines(saw))
	if crashed.ExitCode != 128+9 || !strings.Contains(strings.Join(crashed.LastOutput, "\n"), "OOM killer") {
		t.Fatalf("crashed %+v, want the exit of a SIGKILL (137) and a line that says it was the OOM killer", crashed)
	}

	more, took := landEdit(s, &iter, hog, `addr := ":8080"`, 1)
	s.allSay(1, "hello from hotpod")
	after := s.pods()
	for name, b := range before {
		if a, ok := after[name]; !ok || a.uid != b.uid || a.restarts != 0 {
			t.Fatalf("pod %s was replaced or its container restarted: before %+v after %+v", name, b, a)
		}
	}
	t.Logf("the fix landed %s after it was saved; the user saw:\n  %s", took.Round(100*time.Millisecond), lines(more))
	s.interrupt()
	assertCleanedUp(t, env, ns)
}
