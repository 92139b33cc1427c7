package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/image"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

// projectYAML is the test project's hotpod.yaml: service a listed (a name, and ldflags that
// only it gets), b not (both are .../cmd/server), the image built elsewhere, the Helm chart
// with a values file for development, a forward to b's pods only, the namespace and base.
const projectYAML = `services:
  - image: ko://example.com/proj/a/cmd/server
    name: a
    ldflags: -s -w -X example.com/proj/lib/greet.Mark=fromyaml
  - image: %[1]s/e2e-proj/legacy
    main: ./legacy/cmd/legacy
    binary: /usr/local/bin/legacy
manifests:
  helm:
    chart: charts/proj
    values: [charts/proj/values-dev.yaml]
    set: {legacy.image: "%[1]s/e2e-proj/legacy:%[2]s"}
portForward: ["%[3]d:deployment/b:8080"]
namespace: %[4]s
baseImage: %[1]s/hotpod/base-nonroot:latest
`

// legacyImage builds the project's legacy service as CI would: its binary at
// /usr/local/bin/legacy and a static file on a base with a shell, pushed with tag.
func legacyImage(t *testing.T, env *e2e.Env, dir, tag string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "legacy")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./legacy/cmd/legacy")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build legacy: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	base, err := image.Pull(t.Context(), env.Registry+"/hotpod/base-busybox:latest", p)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := image.Layer([]image.File{
		{Path: "usr/local/bin/legacy", Mode: 0o755, Data: data},
		{Path: "srv/", Mode: 0o755}, {Path: "srv/static/", Mode: 0o755},
		{Path: "srv/static/index.html", Mode: 0o644, Data: []byte("static from the image\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Append(base, image.Config{Entrypoint: []string{"/usr/local/bin/legacy"}}, layer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := image.Push(t.Context(), img, env.Registry+"/e2e-proj/legacy", tag); err != nil {
		t.Fatal(err)
	}
}

// A whole project from its hotpod.yaml alone (no flag but --output json): a Helm chart whose
// values file sets a's replicas, two ko:// services whose main packages are both cmd/server,
// and an image built elsewhere. Each edit rebuilds the services that import what changed and
// lands in their pods only; the image built elsewhere keeps its other files through swaps; the
// port-forward reaches b's pod only; Ctrl-C leaves the namespace as it was.
func TestProjectHelmKoAndImageBuiltElsewhere(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := project(t, "project")
	tag := fmt.Sprintf("ci-%d", time.Now().UnixNano())
	legacyImage(t, env, dir, tag)
	port := testutil.FreePort(t)
	if err := os.WriteFile(filepath.Join(dir, "hotpod.yaml"), fmt.Appendf(nil, projectYAML, env.Registry, tag, port, ns), 0o644); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, env, ns)

	s := runDev(t, env, ns, dir)
	want := map[string]int{"a": 2, "b/cmd/server": 1, "legacy": 1} // a's 2 replicas: values-dev.yaml
	seen := map[string]int{}
	for _, e := range s.await(report.KindReady, 4) {
		seen[e.Ready.Service]++
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("ready at start: %v, want %v", seen, want)
	}
	if _, err := env.Kube.Clientset.CoreV1().ConfigMaps(ns).Get(t.Context(), "proj-seed", metav1.GetOptions{}); err != nil {
		t.Errorf("the chart's pre-install hook was not applied: %v", err)
	}
	for _, p := range env.Pods(t, ns, "app=legacy") {
		c := p.Spec.Containers[0]
		if !strings.HasPrefix(c.Image, env.Registry+"/e2e/legacy@sha256:") || len(c.Command) == 0 || c.Command[0] != "/hotpod/agent" {
			t.Fatalf("legacy runs %s %v: want hotpod's build of it under the agent", c.Image, c.Command)
		}
	}
	says := func(app, want string) {
		t.Helper()
		pods := env.Pods(t, ns, "app="+app)
		if len(pods) == 0 {
			t.Fatalf("no pods of %s", app)
		}
		for _, p := range pods {
			if code, body := env.Get(t, ns, p.Name, 8080, "/"); code != 200 || strings.TrimSpace(body) != want {
				t.Fatalf("pod %s answers %d %q, want %q", p.Name, code, body, want)
			}
		}
	}
	says("a", "a says hello, shared v1 mark fromyaml") // only a's ldflags set the mark
	says("b", "b says hello, shared v1 mark none")
	says("legacy", "legacy says hello, shared v1 mark none")

	// An edit to a's own main package: a's two pods, nothing else.
	s.editFile("a/cmd/server/main.go", "a says hello", "a now says hello")
	for _, e := range s.await(report.KindReady, 2) {
		if e.Ready.Service != "a" || e.Ready.Iteration != 2 {
			t.Fatalf("edit of a: %+v", e)
		}
	}
	says("a", "a now says hello, shared v1 mark fromyaml")
	says("b", "b says hello, shared v1 mark none")

	// An edit to the package all three import: each rebuilds once. b and legacy are at their
	// second iteration: a's edit built neither.
	s.editFile("lib/greet/greet.go", "shared v1", "shared v2")
	got := map[string]string{}
	for _, e := range s.await(report.KindReady, 4) {
		got[e.Ready.Service+" "+e.Ready.Pod] = fmt.Sprint(e.Ready.Iteration)
	}
	iterations := map[string]int{}
	for k, it := range got {
		iterations[strings.Fields(k)[0]+" iteration "+it]++
	}
	if want := map[string]int{"a iteration 3": 2, "b/cmd/server iteration 2": 1, "legacy iteration 2": 1}; fmt.Sprint(iterations) != fmt.Sprint(want) {
		t.Fatalf("the shared edit: %v, want %v (events %v)", iterations, want, got)
	}
	says("a", "a now says hello, shared v2 mark fromyaml")
	says("b", "b says hello, shared v2 mark none")
	says("legacy", "legacy says hello, shared v2 mark none")
	// The image built elsewhere keeps its own files through the swaps.
	for _, p := range env.Pods(t, ns, "app=legacy") {
		if code, body := env.Get(t, ns, p.Name, 8080, "/static"); code != 200 || body != "static from the image\n" {
			t.Fatalf("legacy pod %s /static: %d %q", p.Name, code, body)
		}
	}
	// hotpod.yaml's forward goes to deployment/b only, though a's pods come first by name.
	for i := range 5 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("GET %d through the forward to deployment/b: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "b says hello, shared v2 mark none" {
			t.Fatalf("the forward to deployment/b answered %q", body)
		}
	}

	infos := s.interrupt()
	after := takeSnapshot(t, env, ns)
	if d := before.diff(after); len(d) > 0 {
		t.Fatalf("the namespace is not as before the session:\n%s\nhotpod said:\n%s", strings.Join(d, "\n"), strings.Join(infos, "\n"))
	}
}
