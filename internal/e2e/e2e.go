// Package e2e is the harness of hotpod's end-to-end tests against a real cluster: a namespace per
// test, images built and pushed to the cluster's registry, rollouts awaited, port-forwards and
// exec through client-go, and on failure the pods' logs and the namespace's events in the test
// log. Tests run when HOTPOD_E2E=1 (CI always sets it; hack/cluster.sh up brings the cluster).
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/image"
	"github.com/hotpod/hotpod/internal/kube"
)

// Env is a reachable cluster with its registry.
type Env struct {
	Kube *kube.Client
	// Registry is where test images are pushed (HOTPOD_E2E_REGISTRY, default 127.0.0.1:5000).
	Registry string
}

// Setup skips the test unless HOTPOD_E2E=1, and fails it when the cluster does not answer.
func Setup(t *testing.T) *Env {
	t.Helper()
	if os.Getenv("HOTPOD_E2E") != "1" {
		t.Skip("end-to-end test: set HOTPOD_E2E=1 with a cluster up (hack/cluster.sh up; eval $(hack/cluster.sh env))")
	}
	env, err := Connect(t.Context())
	if err != nil {
		t.Fatalf("HOTPOD_E2E=1 but %v", err)
	}
	return env
}

// Connect reaches the cluster of the current kubeconfig and names its registry.
func Connect(ctx context.Context) (*Env, error) {
	k, err := kube.Load(ctx, kube.Selector{})
	if err != nil {
		return nil, err
	}
	reg := os.Getenv("HOTPOD_E2E_REGISTRY")
	if reg == "" {
		reg = "127.0.0.1:5000"
	}
	return &Env{Kube: k, Registry: reg}, nil
}

// TempNamespace creates a namespace for a benchmark and returns its deletion.
func (e *Env) TempNamespace(ctx context.Context, prefix string) (string, func(), error) {
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1000000)
	if err := e.Kube.CreateNamespace(ctx, name); err != nil {
		return "", nil, err
	}
	return name, func() { _ = e.Kube.DeleteNamespace(context.Background(), name) }, nil
}

// Namespace creates a namespace for this test, deleted at its end. When the test failed, the
// logs of its pods and its events go to the test log first.
func (e *Env) Namespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = fmt.Sprintf("%s-%d", strings.TrimRight(name, "-"), time.Now().UnixNano()%100000)
	if err := e.Kube.CreateNamespace(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			e.Dump(ctx, t, name)
		}
		_ = e.Kube.Clientset.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// Dump writes the pods' state and logs and the namespace's events to the test log.
func (e *Env) Dump(ctx context.Context, t *testing.T, ns string) {
	cs := e.Kube.Clientset
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: phase %s", p.Name, p.Status.Phase)
			for _, s := range p.Status.ContainerStatuses {
				t.Logf("  container %s: ready=%v restarts=%d state=%+v", s.Name, s.Ready, s.RestartCount, s.State)
				b, err := cs.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: s.Name}).DoRaw(ctx)
				if err == nil {
					t.Logf("  logs of %s:\n%s", s.Name, b)
				}
			}
		}
	}
	events, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		sort.Slice(events.Items, func(i, j int) bool {
			return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp)
		})
		for _, ev := range events.Items {
			t.Logf("event %s %s/%s: %s: %s", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
}

// Eventually retries fn until it returns nil, failing the test after timeout.
func (e *Env) Eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// BuildImage compiles pkg (a path inside this module) for the node's platform, puts it on base
// ("scratch" or a registry reference) as /ko-app/<name>, pushes it and returns its digest
// reference.
func (e *Env) BuildImage(t *testing.T, pkg, base string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "app")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	root, err := gopkg.ModuleRoot(t.Context(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(pkg)
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	baseImg, err := image.Base(t.Context(), base, p)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := image.Layer([]image.File{{Path: "ko-app/", Mode: 0o755}, {Path: "ko-app/" + name, Mode: 0o755, Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Append(baseImg, image.Config{Platform: p, Entrypoint: []string{"/ko-app/" + name}}, layer)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := image.Push(t.Context(), img, e.Registry+"/e2e/"+name, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

// WaitRollout waits until deployment name has all its replicas updated and ready, as hotpod
// itself waits (kube.WaitRollout: on timeout the pods' waiting reasons), and returns it.
func (e *Env) WaitRollout(t *testing.T, ns, name string, timeout time.Duration) *appsv1.Deployment {
	t.Helper()
	a := kube.Applied{Kind: "Deployment", Namespace: ns, Name: name}
	if err := e.Kube.WaitRollout(t.Context(), []kube.Applied{a}, timeout, func(string) {}); err != nil {
		t.Fatalf("rollout of deployment %s: %v", name, err)
	}
	d, err := e.Kube.Clientset.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Pods lists the pods matching selector, skipping ones being deleted.
func (e *Env) Pods(t testing.TB, ns, selector string) []corev1.Pod {
	t.Helper()
	l, err := e.Kube.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// Get fetches path from port of pod through a port-forward.
func (e *Env) Get(t testing.TB, ns, pod string, port int, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	local, _, err := e.Kube.PortForward(ctx, ns, pod, port)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", local, path))
	if err != nil {
		t.Fatalf("GET %s through port-forward to %s: %v", path, pod, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
