package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

// project copies a test project from testdata into a fresh directory the test may edit.
func project(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// hotpodEnv is the environment of the hotpod commands the tests run: a cache of their own (agent
// and dlv builds), and the test registry as the default repo.
func hotpodEnv(env *e2e.Env) []string {
	return append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(os.TempDir(), "hotpod-e2e-cache"), "HOTPOD_DEFAULT_REPO="+env.Registry+"/e2e")
}

// hotpod runs a hotpod command in dir to its end and returns its output.
func hotpod(t *testing.T, env *e2e.Env, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), hotpodBin, args...)
	cmd.Dir = dir
	cmd.Env = hotpodEnv(env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runDev starts `hotpod dev --output json` in dir with args; the session's events arrive on
// its channel, its stderr is kept for the log.
func runDev(t *testing.T, env *e2e.Env, ns, dir string, args ...string) *devSession {
	t.Helper()
	s := &devSession{t: t, env: env, ns: ns, dir: dir, stderr: &testutil.SyncBuffer{}}
	s.cmd = exec.Command(hotpodBin, append([]string{"dev", "--output", "json"}, args...)...)
	s.cmd.Dir = dir
	s.cmd.Env = hotpodEnv(env)
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		if t.Failed() {
			t.Logf("hotpod stderr:\n%s", s.stderr.String())
		}
	})
	s.events = testutil.Events(t, out, s.stderr)
	return s
}

// interrupt sends Ctrl-C, waits for hotpod to end cleanly and returns its info messages.
func (s *devSession) interrupt() []string {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		s.t.Fatal(err)
	}
	var infos []string
	for e := range s.events {
		if e.Kind == report.KindInfo {
			infos = append(infos, e.Info.Message)
		}
	}
	if err := s.cmd.Wait(); err != nil {
		s.t.Fatalf("hotpod exit after Ctrl-C: %v", err)
	}
	return infos
}

// snapshot is what a namespace holds, as a user wrote it: the objects of the kinds a chart
// ships, without what the server keeps for itself (status, resource versions) and without the
// pods (a rollback makes new ones: their images and commands are checked apart).
type snapshot map[string]map[string]any

var snapshotKinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "secrets"},
	{Version: "v1", Resource: "serviceaccounts"}, {Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "apps", Version: "v1", Resource: "replicasets"}, {Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "batch", Version: "v1", Resource: "cronjobs"},
	{Group: "shop.e2e.hotpod.dev", Version: "v1", Resource: "widgets"},
}

func takeSnapshot(t *testing.T, env *e2e.Env, ns string) snapshot {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	out := snapshot{}
	for _, gvr := range snapshotKinds {
		l, err := dyn.Resource(gvr).Namespace(ns).List(t.Context(), metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue // the CRD is not installed
		}
		if err != nil {
			t.Fatalf("list %s: %v", gvr.Resource, err)
		}
		for _, o := range l.Items {
			if gvr.Resource == "replicasets" {
				if r, _, _ := unstructured.NestedInt64(o.Object, "spec", "replicas"); r == 0 {
					continue // old revisions, scaled down
				}
			}
			m := o.DeepCopy().Object
			delete(m, "status")
			for _, f := range []string{"resourceVersion", "generation", "managedFields", "creationTimestamp"} {
				unstructured.RemoveNestedField(m, "metadata", f)
			}
			// The Deployment controller's bookkeeping: a rollback makes the old ReplicaSet the
			// newest revision again, and says so in these.
			unstructured.RemoveNestedField(m, "metadata", "annotations", "deployment.kubernetes.io/revision")
			unstructured.RemoveNestedField(m, "metadata", "annotations", "deployment.kubernetes.io/revision-history")
			out[gvr.Resource+"/"+o.GetName()] = m
		}
	}
	return out
}

// diff names what differs between two snapshots.
func (a snapshot) diff(b snapshot) []string {
	var out []string
	for k, v := range a {
		w, ok := b[k]
		switch {
		case !ok:
			out = append(out, "gone: "+k)
		case !reflect.DeepEqual(v, w):
			x, _ := json.Marshal(v)
			y, _ := json.Marshal(w)
			out = append(out, fmt.Sprintf("changed: %s\n  before %s\n  after  %s", k, x, y))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "new: "+k)
		}
	}
	sort.Strings(out)
	return out
}

// A chart's worth of objects (several containers, an init container, a native sidecar, probes of
// every kind, a StatefulSet, a Job, a CronJob, a PVC, a CRD and a custom resource with a pod
// template), some of which the team had deployed before: hotpod dev runs them, an edit lands,
// and Ctrl-C leaves the namespace exactly as it was, the deployed app running its own image
// again. The CRD the session created is kept, and named.
func TestDevCorpusLeavesClusterAsBefore(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := project(t, "shop")
	cs := env.Kube.Clientset
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dyn, err := dynamic.NewForConfig(env.Kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	deleteCRD := func() { // t.Context() has ended by the time cleanups run
		_ = dyn.Resource(crds).Delete(context.Background(), "widgets.shop.e2e.hotpod.dev", metav1.DeleteOptions{})
	}
	deleteCRD() // an earlier run's, so that this session creates it
	env.Eventually(t, time.Minute, "no widgets CRD", func() error {
		if _, err := dyn.Resource(crds).Get(t.Context(), "widgets.shop.e2e.hotpod.dev", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	t.Cleanup(deleteCRD)

	// What the team had before: their config (an older version), their volume, and the API
	// deployed with `hotpod deploy` (its own image, command and liveness probe).
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data: map[string]string{"SUFFIX": "v1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(t.Context(), &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	base := "--base-image=" + env.Registry + "/hotpod/base-nonroot:latest"
	if out, err := hotpod(t, env, dir, "deploy", "-f", "k8s/api-deployment.yaml", "-n", ns, base); err != nil {
		t.Fatalf("hotpod deploy: %v\n%s", err, out)
	}
	before := takeSnapshot(t, env, ns)
	if _, ok := before["deployments/api"]; !ok {
		t.Fatalf("the deployed API is not in the snapshot: %v", before)
	}

	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, base)
	// Two API pods (api and the worker sidecar each) and the cache: five agents.
	ready := s.await(report.KindReady, 5)
	pods := map[string]bool{}
	for _, e := range ready {
		pods[e.Ready.Pod] = true
	}
	if len(pods) != 5 {
		t.Fatalf("ready events for %d agents, want 5: %+v", len(pods), ready)
	}
	env.WaitRollout(t, ns, "api", 2*time.Minute) // the deployed pods are gone
	for _, p := range env.Pods(t, ns, "app.kubernetes.io/name=api") {
		if code, body := env.Get(t, ns, p.Name, 8080, "/"); code != 200 || strings.TrimSpace(body) != "shop api v1" {
			t.Fatalf("pod %s answers %d %q", p.Name, code, body)
		}
		if c := p.Spec.Containers[0]; len(c.Command) == 0 || c.Command[0] != "/hotpod/agent" || c.LivenessProbe != nil {
			t.Fatalf("pod %s container api is not in dev mode: %v, liveness %v", p.Name, c.Command, c.LivenessProbe)
		}
	}
	env.Eventually(t, 2*time.Minute, "the migrate Job completes under the agent", func() error {
		j, err := cs.BatchV1().Jobs(ns).Get(t.Context(), "migrate", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if j.Status.Succeeded != 1 {
			return fmt.Errorf("job status %+v", j.Status)
		}
		return nil
	})
	w, err := dyn.Resource(schema.GroupVersionResource{Group: "shop.e2e.hotpod.dev", Version: "v1", Resource: "widgets"}).Namespace(ns).Get(t.Context(), "gadget", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := fmt.Sprint(w.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]); !strings.Contains(img, "@sha256:") {
		t.Fatalf("the custom resource's image is %q, want a built digest", img)
	}

	s.editFile("cmd/api/main.go", "shop api v1", "shop api v2")
	edited := s.await(report.KindReady, 3) // two api containers and the cache
	for _, e := range edited {
		if e.Ready.Service != "api" || e.Ready.Iteration != 2 {
			t.Fatalf("edit of api: %+v", e)
		}
	}
	for _, p := range env.Pods(t, ns, "app.kubernetes.io/name=api") {
		if code, body := env.Get(t, ns, p.Name, 8080, "/"); code != 200 || strings.TrimSpace(body) != "shop api v2" {
			t.Fatalf("after the edit pod %s answers %d %q", p.Name, code, body)
		}
	}

	// kodata/: served from the emptyDir the agent seeded; an edit there reaches every pod of
	// the service without a build, on the read-only root filesystem.
	for _, p := range env.Pods(t, ns, "app.kubernetes.io/name=api") {
		if code, body := env.Get(t, ns, p.Name, 8080, "/static/index.txt"); code != 200 || strings.TrimSpace(body) != "static v1" {
			t.Fatalf("pod %s serves kodata %d %q", p.Name, code, body)
		}
	}
	s.editFile("cmd/api/kodata/index.txt", "static v1", "static v2")
	for _, e := range s.await(report.KindSynced, 3) {
		if e.Synced.Service != "api" {
			t.Fatalf("synced %+v", e)
		}
	}
	for _, p := range env.Pods(t, ns, "app.kubernetes.io/name=api") {
		if code, body := env.Get(t, ns, p.Name, 8080, "/static/index.txt"); code != 200 || strings.TrimSpace(body) != "static v2" {
			t.Fatalf("after the kodata edit pod %s serves %d %q", p.Name, code, body)
		}
	}

	infos := s.interrupt()
	cleanup := strings.Join(infos, "\n")
	if !strings.Contains(cleanup, "kept customresourcedefinition/widgets.shop.e2e.hotpod.dev") {
		t.Errorf("the exit lines do not name the kept CRD:\n%s", cleanup)
	}
	after := takeSnapshot(t, env, ns)
	if d := before.diff(after); len(d) > 0 {
		t.Fatalf("the namespace is not as before the session:\n%s\nhotpod said:\n%s", strings.Join(d, "\n"), cleanup)
	}
	// The deployed API runs its own image again: no agent, its liveness probe back.
	env.Eventually(t, 2*time.Minute, "the API's own pods run again", func() error {
		ps := env.Pods(t, ns, "app.kubernetes.io/name=api")
		if len(ps) != 2 {
			return fmt.Errorf("%d api pods", len(ps))
		}
		for _, p := range ps {
			c := p.Spec.Containers[0]
			if len(c.Command) > 0 || c.LivenessProbe == nil || p.Labels["hotpod.dev/session"] != "" {
				return fmt.Errorf("pod %s: command %v liveness %v labels %v", p.Name, c.Command, c.LivenessProbe, p.Labels)
			}
		}
		return nil
	})
	crd, err := dyn.Resource(crds).Get(t.Context(), "widgets.shop.e2e.hotpod.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the CRD the session created was not kept: %v", err)
	}
	if crd.GetLabels()["hotpod.dev/session"] != "" {
		t.Fatalf("the kept CRD still carries the session label: %v", crd.GetLabels())
	}
}

const namespacedManifest = `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: %[1]s}
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
---
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: %[1]s, labels: {app: solo}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: hello
    image: ko://example.com/hello
`

// helloProject is examples/hello as a module of its own, with manifests.
func helloProject(t testing.TB, manifests map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/hello\n\ngo 1.24\n", "main.go": helloSource(t)}
	maps.Copy(files, manifests)
	writeFiles(t, dir, files)
	return dir
}

// helloSource is examples/hello/main.go.
func helloSource(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile("../../examples/hello/main.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// writeFiles writes each file (a slash-separated path under dir) with its content.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Objects land in the namespace their manifest names (a Namespace among them is applied first;
// the token Secret goes there), a contradicting -n and a missing namespace are refused before
// anything is built, and after kill -9 the next session takes the left-over one over (a Pod's
// immutable spec included) and cleans it up; the namespace the first session made is kept.
func TestDevNamespacesAndTakeOver(t *testing.T) {
	env := e2e.Setup(t)
	cs := env.Kube.Clientset
	shop := fmt.Sprintf("e2e-shop-%d", time.Now().UnixNano()%100000)
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), shop, metav1.DeleteOptions{}) })
	dir := helloProject(t, map[string]string{
		"k8s/app.yaml":     fmt.Sprintf(namespacedManifest, shop),
		"missing/app.yaml": strings.Replace(fmt.Sprintf(namespacedManifest, "e2e-nowhere"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-nowhere}\n---\n", "", 1),
	})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dev", "-f", "k8s", "-n", "other"}, fmt.Sprintf(`its manifest says namespace %q but -n says "other": drop -n, or change the manifest`, shop)},
		{[]string{"dev", "-f", "missing"}, `namespace "e2e-nowhere" does not exist`},
	} {
		t0 := time.Now()
		out, err := hotpod(t, env, dir, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "building") {
			t.Fatalf("hotpod %v: %v\n%s\nwant a refusal before building, with %q", tc.args, err, out, tc.want)
		}
		t.Logf("hotpod %v refused in %s", tc.args, time.Since(t0).Round(time.Millisecond))
	}
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), shop, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused session created namespace %s: %v", shop, err)
	}

	base := "--base-image=" + env.Registry + "/hotpod/base-nonroot:latest"
	first := runDev(t, env, shop, dir, "-f", "k8s", base)
	first.await(report.KindReady, 2)
	secrets, err := cs.CoreV1().Secrets(shop).List(t.Context(), metav1.ListOptions{LabelSelector: "hotpod.dev/session"})
	if err != nil || len(secrets.Items) != 1 {
		t.Fatalf("session secrets in %s: %v %v", shop, secrets, err)
	}
	firstSecret := secrets.Items[0].Name
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()

	second := runDev(t, env, shop, dir, "-f", "k8s", base)
	var infos []string
	for n := 0; n < 2; {
		e, ok := <-second.events
		if !ok {
			t.Fatal("the second session ended")
		}
		switch e.Kind {
		case report.KindReady:
			n++
		case report.KindInfo:
			infos = append(infos, e.Info.Message)
		case report.KindFailed, report.KindCrashed:
			t.Fatalf("second session: %+v", e)
		}
	}
	if !strings.Contains(strings.Join(infos, "\n"), "taking over from session") {
		t.Errorf("the second session did not say it took over:\n%s", strings.Join(infos, "\n"))
	}
	if _, err := cs.CoreV1().Secrets(shop).Get(t.Context(), firstSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the killed session's secret %s is still there: %v", firstSecret, err)
	}
	second.edit("hello from hotpod", "hello after the take-over")
	second.await(report.KindReady, 2)
	for _, p := range env.Pods(t, shop, "") {
		if code, body := env.Get(t, shop, p.Name, 8080, "/"); code != 200 || strings.TrimSpace(body) != "hello after the take-over" {
			t.Fatalf("pod %s answers %d %q", p.Name, code, body)
		}
	}

	exit := strings.Join(second.interrupt(), "\n")
	if !strings.Contains(exit, "kept namespace/"+shop) {
		t.Errorf("the exit lines do not name the kept namespace:\n%s", exit)
	}
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), shop, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace %s: %v", shop, err)
	}
	env.Eventually(t, time.Minute, "nothing of either session left", func() error {
		var left []string
		if _, err := cs.AppsV1().Deployments(shop).Get(t.Context(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("deployment: %v", err))
		}
		if ps := env.Pods(t, shop, ""); len(ps) > 0 {
			left = append(left, fmt.Sprintf("%d pods", len(ps)))
		}
		if l, err := cs.CoreV1().Secrets(shop).List(t.Context(), metav1.ListOptions{LabelSelector: "hotpod.dev/session"}); err != nil || len(l.Items) > 0 {
			left = append(left, fmt.Sprintf("session secrets %v", err))
		}
		ns, err := cs.CoreV1().Namespaces().Get(t.Context(), shop, metav1.GetOptions{})
		if err != nil || ns.Labels["hotpod.dev/session"] != "" {
			left = append(left, fmt.Sprintf("namespace labels %v %v", ns.Labels, err))
		}
		if len(left) > 0 {
			return fmt.Errorf("%s", strings.Join(left, "; "))
		}
		return nil
	})
}

const wrappersManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: wrapped}
spec:
  selector: {matchLabels: {app: wrapped}}
  template:
    metadata: {labels: {app: wrapped}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: shell
        image: ko://example.com/hello
        command: [sh, -c, 'echo "shell wrapper starts"; exec /ko-app/hello']
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
      - name: tini
        image: ko://example.com/hello
        command: [/sbin/tini, --, /ko-app/hello]
        env: [{name: PORT, value: "8081"}]
        readinessProbe: {tcpSocket: {port: 8081}, periodSeconds: 1}
      - name: path
        image: ko://example.com/hello
        command: [hello]
        env: [{name: PORT, value: "8082"}]
        readinessProbe: {tcpSocket: {port: 8082}, periodSeconds: 1}
`

// Commands as teams write them, on an image with a shell and tini (ko's PATH included): a
// shell script that execs the binary, tini in front of it, and the binary by name through
// PATH. Each runs the swapped binary, and an edit reaches all three.
func TestDevWrapperCommands(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/app.yaml": wrappersManifest})
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image="+env.Registry+"/hotpod/base-busybox:latest")
	s.await(report.KindReady, 3)
	pod := env.Pods(t, ns, "app=wrapped")[0]
	s.edit("hello from hotpod", "hello through a wrapper")
	if got := s.await(report.KindReady, 3); got[0].Ready.Iteration != 2 {
		t.Fatalf("ready %+v", got)
	}
	for _, port := range []int{8080, 8081, 8082} {
		if code, body := env.Get(t, ns, pod.Name, port, "/"); code != 200 || strings.TrimSpace(body) != "hello through a wrapper" {
			t.Fatalf("port %d answers %d %q", port, code, body)
		}
	}
	p := env.Pods(t, ns, "app=wrapped")[0]
	if p.UID != pod.UID {
		t.Fatalf("the pod was replaced: %s → %s", pod.Name, p.Name)
	}
	s.interrupt()
}

const hostNetworkManifest = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ko://example.com/hello
        env: [{name: PORT, value: "%[2]d"}]
        readinessProbe: {tcpSocket: {port: %[2]d}, periodSeconds: 1}
`

// Two hostNetwork DaemonSets on the one node: their agents share the node's ports, so each takes
// one from the node range by a hash of its workload (never 7878 twice); both get the edit.
func TestDevHostNetworkAgentsDoNotCollide(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	a, b := testutil.FreePort(t), testutil.FreePort(t)
	dir := helloProject(t, map[string]string{"k8s/a.yaml": fmt.Sprintf(hostNetworkManifest, "node-a", a),
		"k8s/b.yaml": fmt.Sprintf(hostNetworkManifest, "node-b", b)})
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image="+env.Registry+"/hotpod/base-nonroot:latest")
	s.await(report.KindReady, 2)
	ports := map[string]bool{}
	for _, p := range env.Pods(t, ns, "") {
		if !p.Spec.HostNetwork {
			t.Fatalf("pod %s is not on the host network", p.Name)
		}
		ports[p.Annotations["hotpod.dev/agents"]] = true
	}
	if len(ports) != 2 {
		t.Fatalf("the two DaemonSets' agents: %v", ports)
	}
	s.edit("hello from hotpod", "hello from the node")
	s.await(report.KindReady, 2)
	for _, p := range env.Pods(t, ns, "") {
		port := a
		if p.Labels["app"] == "node-b" {
			port = b
		}
		if code, body := env.Get(t, ns, p.Name, port, "/"); code != 200 || strings.TrimSpace(body) != "hello from the node" {
			t.Fatalf("pod %s answers %d %q", p.Name, code, body)
		}
	}
	s.interrupt()
}
