package manifest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/testutil"
)

var dev = manifest.Dev{
	Session:     "s1",
	TokenSecret: "hotpod-s1",
	Images: map[string]manifest.Built{
		"ko://github.com/hotpod/hotpod/examples/hello": {Ref: "127.0.0.1:5000/hello@sha256:1111", Name: "hello"},
		"ko://example.com/db/cmd/db":                   {Ref: "127.0.0.1:5000/db@sha256:2222", Name: "db"},
		"ko://example.com/agent":                       {Ref: "127.0.0.1:5000/agent@sha256:3333", Name: "agent"},
		"ko://example.com/svc/cmd/api":                 {Ref: "127.0.0.1:5000/api@sha256:4444", Name: "api", KoData: "/var/run/ko"},
		"ko://example.com/svc/cmd/worker":              {Ref: "127.0.0.1:5000/worker@sha256:5555", Name: "worker"},
		"ko://example.com/svc/cmd/migrate":             {Ref: "127.0.0.1:5000/migrate@sha256:6666", Name: "migrate"},
		// hotpod.yaml's ready:, stopSignal:, grace: and stopPolicy: for a service.
		"ko://example.com/svc/cmd/tuned": {Ref: "127.0.0.1:5000/tuned@sha256:8888", Name: "tuned", Service: "tuned",
			Ready: "tcp:9090", StopSignal: "INT", Grace: 15 * time.Second, StopPolicy: "graceful"},
		"registry.example.com/shop/legacy": {Ref: "127.0.0.1:5000/legacy@sha256:7777", Name: "legacy", Service: "legacy",
			Binary: "/usr/local/bin/legacy", Entrypoint: []string{"/usr/local/bin/legacy"}, Cmd: []string{"--config=/etc/legacy.yaml"},
			Path: "/usr/local/bin:/usr/bin:/bin"},
	},
}

// rewriteInputs are the manifests under testdata/rewrite that have a golden rewrite.
func rewriteInputs(t testing.TB) []string {
	all, err := filepath.Glob("testdata/rewrite/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, in := range all {
		if !strings.HasSuffix(in, ".golden.yaml") {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) == 0 {
		t.Fatal("no manifests under testdata/rewrite")
	}
	return inputs
}

func TestRewriteGolden(t *testing.T) {
	for _, in := range rewriteInputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			objs, err := manifest.ReadPaths([]string{in})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			for _, o := range objs {
				if err := manifest.Rewrite(o, dev); err != nil {
					t.Fatal(err)
				}
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString("---\n")
				out.Write(b)
			}
			testutil.Golden(t, strings.TrimSuffix(in, ".yaml")+".golden.yaml", out.Bytes())
		})
	}
}

func TestKoRefs(t *testing.T) {
	objs, err := manifest.ReadPaths([]string{"testdata/rewrite"})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := manifest.KoRefs(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := "example.com/agent github.com/hotpod/hotpod/examples/hello example.com/svc/cmd/worker example.com/svc/cmd/api example.com/svc/cmd/migrate example.com/db/cmd/db example.com/svc/cmd/tuned"
	if got := strings.Join(refs, " "); got != want {
		t.Fatalf("refs\n got %s\nwant %s", got, want)
	}
}

// ContainerImages finds the images of containers, init containers and native sidecars in
// every kind of pod template, each once, and nothing that is not a container's image.
func TestContainerImages(t *testing.T) {
	objs, err := manifest.Read(strings.NewReader(`apiVersion: apps/v1
kind: Deployment
metadata: {name: a, annotations: {note: "registry.example.com/not/an/image:1"}}
spec:
  template:
    spec:
      initContainers: [{name: init, image: busybox}]
      containers:
      - {name: a, image: "registry.example.com/shop/legacy:1.4", env: [{name: X, value: "ko://example.com/x"}]}
      - {name: b, image: ko://example.com/b}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, image: "registry.example.com/shop/legacy:1.4"}, {name: d, image: "registry.example.com/shop/legacy@sha256:abcd"}]
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(manifest.ContainerImages(objs), " ")
	want := "busybox registry.example.com/shop/legacy:1.4 ko://example.com/b registry.example.com/shop/legacy@sha256:abcd"
	if got != want {
		t.Fatalf("images\n got %s\nwant %s", got, want)
	}
}

// TestRewriteRefuses: shapes dev mode cannot handle are refused with the object, the reason
// and the fix, before anything is applied.
func TestRewriteRefuses(t *testing.T) {
	pod := func(extra string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + extra
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"generateName", "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: 'ko://example.com/svc/cmd/migrate'}]}}}\n",
			"Job/migrate-*: hotpod dev needs a fixed metadata.name"},
		{"script that hides the binary", pod("  containers: [{name: api, image: 'ko://example.com/svc/cmd/api', command: [/entrypoint.sh]}]\n"),
			`Pod/p: container api: its command ["/entrypoint.sh"] never names the app's binary (/ko-app/api or api)`},
		{"shell without the binary", pod("  containers: [{name: api, image: 'ko://example.com/svc/cmd/api', command: [sh, -c, 'exec /ko-app/apiserver']}]\n"),
			"never names the app's binary"},
		{"volume clash", pod("  volumes: [{name: hotpod-app-0, emptyDir: {}}]\n  containers: [{name: api, image: 'ko://example.com/svc/cmd/api'}]\n"),
			"the pod already has a volume named hotpod-app-0: hotpod adds volumes named hotpod-*; rename yours"},
		{"mount clash", pod("  containers: [{name: api, image: 'ko://example.com/svc/cmd/api', volumeMounts: [{name: x, mountPath: /hotpod/app}]}]\n"),
			"it already mounts /hotpod/app"},
		{"probe port", pod("  containers: [{name: api, image: 'ko://example.com/svc/cmd/api', readinessProbe: {httpGet: {port: web}}}]\n"),
			"readinessProbe port web is neither a number nor the name of one of the container's ports"},
		{"not built", pod("  containers: [{name: api, image: 'ko://example.com/other'}]\n"),
			"ko://example.com/other was not built"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustRead(t, tc.doc)
			err := manifest.Rewrite(objs[0], dev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestAgentPortsAvoidThePods: an agent never takes a port the pod declares, and hostNetwork
// pods get theirs from the node range.
func TestAgentPortsAvoidThePods(t *testing.T) {
	for _, tc := range []struct {
		doc      string
		min, max int
		not      int
	}{
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: 'ko://example.com/agent', ports: [{containerPort: 7878}, {containerPort: 7879}]}]}\n", 7880, 7880, 0},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {hostNetwork: true, containers: [{name: a, image: 'ko://example.com/agent'}]}\n", 20000, 29999, 7878},
	} {
		o := mustRead(t, tc.doc)[0]
		if err := manifest.Rewrite(o, dev); err != nil {
			t.Fatal(err)
		}
		agents, err := manifest.Agents(o.GetAnnotations())
		if err != nil || len(agents) != 1 {
			t.Fatalf("agents %v %v", agents, err)
		}
		if p := agents[0].Port; p < tc.min || p > tc.max || p == tc.not {
			t.Errorf("agent port %d, want %d..%d", p, tc.min, tc.max)
		}
	}
}

func TestReadErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"kind: Pod\nmetadata: {name: x}\n":                                "no apiVersion",
		"apiVersion: v1\nmetadata: {name: x}\n":                           "no kind",
		"apiVersion: v1\nkind: Pod\n":                                     "no metadata.name",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n":                "document 1",
		"apiVersion: v1\nkind: List\nitems: [1]\n":                        "not an object",
		"---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n- x\n": "document 2",
	} {
		_, err := manifest.Read(strings.NewReader(doc), "k8s.yaml")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "k8s.yaml") {
			t.Errorf("%q: got %v, want an error naming k8s.yaml with %q", doc, err, want)
		}
	}
	if _, err := manifest.ReadPaths([]string{"testdata/none.yaml"}); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := manifest.KoRefs(mustRead(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: 'ko://'}]}\n")); err == nil || !strings.Contains(err.Error(), "Pod/a") {
		t.Error("empty ko:// accepted")
	}
}

func mustRead(t *testing.T, doc string) []*manifest.Object {
	t.Helper()
	objs, err := manifest.Read(strings.NewReader(doc), "test")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// FuzzRead: manifests come from the user's files. No input may panic the reader or the
// rewrite; what Read returns is an object with apiVersion, kind and a name, and what it refuses
// gets one line that names the file; after a rewrite no container of the object still runs a
// ko:// image that was built.
func FuzzRead(f *testing.F) {
	for _, s := range rewriteInputs(f) {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: a}}]\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod}]\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [1]\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {initContainers: [{name: i, image: 'ko://example.com/agent'}], containers: [{name: a, image: 'ko://example.com/db/cmd/db'}]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := manifest.Read(bytes.NewReader(b), "fuzz.yaml")
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.yaml: ") || strings.Contains(msg, "\n") {
				t.Fatalf("the error does not name the file on one line: %q", msg)
			}
			return
		}
		for _, o := range objs {
			if o.GetAPIVersion() == "" || o.GetKind() == "" || (o.GetName() == "" && o.GetGenerateName() == "") {
				t.Fatalf("Read returned an object without apiVersion, kind or name: %v", o.Object)
			}
		}
		if _, err := manifest.KoRefs(objs); err != nil {
			return
		}
		for _, o := range objs {
			if manifest.Rewrite(o, dev) != nil {
				continue
			}
			left, err := manifest.KoRefs([]*manifest.Object{o})
			if err != nil {
				t.Fatalf("the rewritten object's images: %v", err)
			}
			for _, ip := range left {
				if _, built := dev.Images[ip]; built {
					t.Fatalf("ko://%s was built but is still in the rewritten object: %v", ip, o.Object)
				}
			}
		}
	})
}

func TestKustomize(t *testing.T) {
	objs, err := manifest.Kustomize("testdata/kustomize/dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetName() != "dev-hello" {
		t.Fatalf("got %d objects, first %v", len(objs), objs[0].GetName())
	}
	refs, err := manifest.KoRefs(objs)
	if err != nil || len(refs) != 1 || refs[0] != "github.com/hotpod/hotpod/examples/hello" {
		t.Fatalf("ko refs %v %v", refs, err)
	}
	if l, _, _ := unstructured.NestedString(objs[0].Object, "spec", "template", "metadata", "labels", "env"); l != "dev" {
		t.Fatalf("pod template label env=%q, want dev", l)
	}
	if _, err := manifest.Kustomize("testdata/rewrite"); err == nil {
		t.Fatal("a directory without kustomization.yaml was accepted")
	}
}

// TestRewriteDebugGolden: with --debug, every agent gets --debug and nothing else changes.
func TestRewriteDebugGolden(t *testing.T) {
	d := dev
	d.Debug = true
	in := "testdata/debug/deployment.yaml"
	objs, err := manifest.ReadPaths([]string{in})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, o := range objs {
		if err := manifest.Rewrite(o, d); err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	testutil.Golden(t, "testdata/debug/deployment.golden.yaml", out.Bytes())
}

// TestRewriteDebugRefusesScripts: dlv exec runs the binary itself; a binary run only from a
// shell script is refused in one line with the fix, while dev mode without --debug takes it.
func TestRewriteDebugRefusesScripts(t *testing.T) {
	doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: api, image: 'ko://example.com/svc/cmd/api', command: [sh, -c, 'exec /ko-app/api --x']}]\n"
	if err := manifest.Rewrite(mustRead(t, doc)[0], dev); err != nil {
		t.Fatalf("without --debug: %v", err)
	}
	d := dev
	d.Debug = true
	err := manifest.Rewrite(mustRead(t, doc)[0], d)
	if err == nil || !strings.Contains(err.Error(), "Pod/p: container api: --debug runs the binary itself under Delve (dlv exec), but the command") ||
		!strings.Contains(err.Error(), "give the binary and its arguments as command and args, or drop --debug") {
		t.Fatalf("got %v, want a refusal naming the container and the fix", err)
	}
}
