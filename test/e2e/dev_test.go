package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

var hotpodBin string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithBinary(m, "../../cmd/hotpod", &hotpodBin)) }

// devSession is a running `hotpod dev -f` on a copy of examples/hello.
type devSession struct {
	t      *testing.T
	env    *e2e.Env
	ns     string
	dir    string
	cmd    *exec.Cmd
	events <-chan report.Event
	stderr *testutil.SyncBuffer
	port   int // the --port-forward local port
}

// helloManifest takes the replica count and whether the container must run as non-root on a
// read-only root filesystem (runAsNonRoot: the kubelet refuses to start it as root).
const helloManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: %[1]d
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ko://example.com/hello
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
        livenessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1, failureThreshold: 1}
        securityContext: {readOnlyRootFilesystem: %[2]v, runAsNonRoot: %[2]v, allowPrivilegeEscalation: false}
---
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{port: 80, targetPort: 8080}]
`

func startDev(t *testing.T, env *e2e.Env, replicas int, base string, nonRoot bool) *devSession {
	t.Helper()
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/hello.yaml": fmt.Sprintf(helloManifest, replicas, nonRoot)})
	port := testutil.FreePort(t)
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--default-repo", env.Registry+"/e2e", "--base-image", base,
		"--port-forward", fmt.Sprintf("%d:8080", port))
	s.port = port
	return s
}

// await waits for n events of kind (other kinds are skipped but ship_failed and unexpected
// crashes fail the test) and returns them.
func (s *devSession) await(kind string, n int) []report.Event {
	s.t.Helper()
	var got []report.Event
	deadline := time.After(4 * time.Minute)
	for len(got) < n {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("hotpod exited while waiting for %s", kind)
			}
			switch {
			case e.Kind == kind:
				got = append(got, e)
			case e.Kind == report.KindFailed, e.Kind == report.KindCrashed, e.Kind == report.KindBuildFailed:
				s.t.Fatalf("got %+v while waiting for %s", e, kind)
			}
		case <-deadline:
			s.t.Fatalf("timed out waiting for %d %s events (have %d)", n, kind, len(got))
		}
	}
	return got
}

// edit replaces the first from in main.go by to, as an editor saves (write beside, rename).
func (s *devSession) edit(from, to string) { s.t.Helper(); s.editFile("main.go", from, to) }

// editFile replaces the first from in file (relative to the project) by to, as an editor saves.
func (s *devSession) editFile(file, from, to string) {
	s.t.Helper()
	p := filepath.Join(s.dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatal(err)
	}
	if !strings.Contains(string(b), from) {
		s.t.Fatalf("%s has no %q", file, from)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), from, to, 1)), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		s.t.Fatal(err)
	}
}

// answers asks every pod of the session, through its own port-forward, what it says.
func (s *devSession) answers() map[string]string {
	s.t.Helper()
	out := map[string]string{}
	for _, p := range s.env.Pods(s.t, s.ns, "app=hello") {
		code, body := s.env.Get(s.t, s.ns, p.Name, 8080, "/")
		out[p.Name] = fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
	}
	return out
}

// allSay checks that n pods answer and every one says want.
func (s *devSession) allSay(n int, want string) {
	s.t.Helper()
	answers := s.answers()
	if len(answers) != n {
		s.t.Fatalf("%d pods answered, want %d: %v", len(answers), n, answers)
	}
	for pod, got := range answers {
		if got != "200 "+want {
			s.t.Fatalf("pod %s answers %q, want %q", pod, got, want)
		}
	}
}

type podState struct {
	uid      string
	restarts int32
}

func (s *devSession) pods() map[string]podState {
	out := map[string]podState{}
	for _, p := range s.env.Pods(s.t, s.ns, "app=hello") {
		var r int32
		for _, c := range p.Status.ContainerStatuses {
			r += c.RestartCount
		}
		out[p.Name] = podState{string(p.UID), r}
	}
	return out
}

// Two replicas on the scratch base: an edit reaches both, and no pod was replaced or restarted.
func TestDevEditReachesEveryReplicaInPlace(t *testing.T) {
	env := e2e.Setup(t)
	s := startDev(t, env, 2, "scratch", false)
	first := s.await(report.KindReady, 2)
	if first[0].Ready.Pod == first[1].Ready.Pod {
		t.Fatalf("both ready events name pod %s", first[0].Ready.Pod)
	}
	s.allSay(2, "hello from hotpod")
	before := s.pods()
	if len(before) != 2 {
		t.Fatalf("%d pods", len(before))
	}

	s.edit("hello from hotpod", "hello from the edit")
	got := s.await(report.KindReady, 2)
	if a, b := got[0].Ready, got[1].Ready; a.Iteration != 2 || b.Iteration != 2 || a.Pod == b.Pod || a.BytesSent == 0 {
		t.Fatalf("ready events %+v", got)
	}
	s.allSay(2, "hello from the edit")
	after := s.pods()
	for name, b := range before {
		if a, ok := after[name]; !ok || a.uid != b.uid || a.restarts != 0 {
			t.Fatalf("pod %s was replaced or restarted: before %+v after %+v (all after: %v)", name, b, a, after)
		}
	}
	// --port-forward reaches the pods too, and they answer with the edit through it.
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.port))
	if err != nil {
		t.Fatalf("GET through --port-forward: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "hello from the edit" {
		t.Fatalf("GET through --port-forward: %d %q %v, want 200 %q", resp.StatusCode, body, err, "hello from the edit")
	}
}

// The non-root base with a read-only root filesystem: an edit lands; a compile error ships
// nothing; an app that exits 1 at start leaves the pod up (no CrashLoopBackOff) and the fix brings
// it back; a deleted pod's replacement gets the current binary without a new edit; Ctrl-C
// deletes what hotpod applied.
func TestDevNonRootCrashReplaceAndCleanup(t *testing.T) {
	env := e2e.Setup(t)
	s := startDev(t, env, 1, env.Registry+"/hotpod/base-nonroot:latest", true)
	s.await(report.KindReady, 1)
	// The dev rewrite kept the container's security context: the kubelet ran it as non-root on a
	// read-only root, and the agent swaps binaries all the same.
	for _, p := range env.Pods(t, s.ns, "app=hello") {
		sc := p.Spec.Containers[0].SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Fatalf("pod %s runs with security context %+v, want a read-only root and runAsNonRoot", p.Name, sc)
		}
	}

	s.edit("hello from hotpod", "hello, non-root")
	s.await(report.KindReady, 1)
	s.allSay(1, "hello, non-root")

	s.edit("fmt.Fprintln(w, greeting)", "fmt.Fprintln(w, greeting, notDefined)")
	bf := s.awaitAny(report.KindBuildFailed).BuildFailed
	if !strings.Contains(bf.Error, "undefined: notDefined") {
		t.Fatalf("build_failed: %+v", bf)
	}
	s.allSay(1, "hello, non-root")

	s.edit("fmt.Fprintln(w, greeting, notDefined)", "fmt.Fprintln(w, greeting)")
	s.await(report.KindReady, 1)
	s.edit(`addr := ":8080"`, `fmt.Println("exiting on purpose"); os.Exit(1); addr := ":8080"`)
	cr := s.awaitAny(report.KindCrashed).Crashed
	if cr.ExitCode != 1 || !strings.Contains(strings.Join(cr.LastOutput, "\n"), "exiting on purpose") {
		t.Fatalf("crashed: %+v", cr)
	}
	// Longer than the liveness probe would need to kill it, were the probe still there.
	time.Sleep(4 * time.Second)
	for _, p := range env.Pods(t, s.ns, "app=hello") {
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount != 0 || c.State.Running == nil {
				t.Fatalf("pod %s container %s: restarts %d state %+v", p.Name, c.Name, c.RestartCount, c.State)
			}
		}
	}
	s.edit(`fmt.Println("exiting on purpose"); os.Exit(1); addr := ":8080"`, `addr := ":8080"`)
	s.await(report.KindReady, 1)
	s.allSay(1, "hello, non-root")

	// Replace the pod: the new one starts from the image and is brought to the current binary.
	old := env.Pods(t, s.ns, "app=hello")[0]
	zero := int64(0)
	if err := env.Kube.Clientset.CoreV1().Pods(s.ns).Delete(t.Context(), old.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	for {
		joined := s.await(report.KindReady, 1)[0].Ready
		if joined.Pod != old.Name {
			break
		}
	}
	env.WaitRollout(t, s.ns, "hello", 2*time.Minute)
	s.allSay(1, "hello, non-root")

	// Ctrl-C: everything applied is deleted.
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range s.events {
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("hotpod exit: %v", err)
	}
	cs := env.Kube.Clientset
	if _, err := cs.AppsV1().Deployments(s.ns).Get(t.Context(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the deployment after Ctrl-C: %v, want not found", err)
	}
	if _, err := cs.CoreV1().Services(s.ns).Get(t.Context(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the service after Ctrl-C: %v, want not found", err)
	}
	secrets, err := cs.CoreV1().Secrets(s.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "hotpod.dev/session"})
	if err != nil || len(secrets.Items) != 0 {
		t.Fatalf("session secrets left: %v %v", secrets, err)
	}
	env.Eventually(t, time.Minute, "pods gone", func() error {
		if n := len(env.Pods(t, s.ns, "app=hello")); n != 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
}

// awaitAny waits for one event of kind, skipping every other kind.
func (s *devSession) awaitAny(kind string) report.Event {
	s.t.Helper()
	deadline := time.After(4 * time.Minute)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("hotpod exited while waiting for %s", kind)
			}
			if e.Kind == kind {
				return e
			}
		case <-deadline:
			s.t.Fatalf("timed out waiting for %s", kind)
		}
	}
}
