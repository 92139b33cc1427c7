package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
)

// projectFile is a hotpod.yaml that sets everything a flag can also set.
const projectFile = `services:
  - image: ko://example.com/shop/a/cmd/server
    name: a
    ldflags: -X main.v=a
    baseImage: registry.example.com/base/a:1
    ready: tcp:9090
    stopSignal: INT
    grace: 7s
    stopPolicy: kill
  - image: registry.example.com/shop/legacy
    main: ./legacy
    binary: /usr/local/bin/legacy
    tags: [netgo]
build:
  gcflags: all=-N -l
  env: [GOFLAGS=-mod=mod]
manifests:
  helm:
    chart: chart
    values: [chart/values-dev.yaml]
    set: {replicas: 2, image.tag: dev}
portForward: ["8080:deployment/a:8080", "9000:9000"]
namespace: shop-dev
context: kind-shop
defaultRepo: registry.example.com/file/
baseImage: registry.example.com/base/file:1
`

// projectDir is a project with projectFile, its chart and main directory; run from a
// subdirectory, as hotpod.yaml is found upwards.
func projectDir(t *testing.T) (root, sub string) {
	t.Helper()
	root = t.TempDir()
	for name, body := range map[string]string{
		"hotpod.yaml":           projectFile,
		"chart/Chart.yaml":      "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
		"chart/values-dev.yaml": "replicas: 1\n",
		"legacy/main.go":        "package main\n\nfunc main() {}\n",
		"k8s/app.yaml":          "",
		"sub/dir/.keep":         "",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, filepath.Join(root, "sub", "dir")
}

// parseFlags declares the groups as dev does and parses args.
func parseFlags(t *testing.T, args ...string) projectFlags {
	t.Helper()
	fs := pflag.NewFlagSet("dev", pflag.ContinueOnError)
	f := projectFlags{manifests: &ManifestFlags{}, kube: &KubeFlags{}, image: &ImageFlags{}, build: &BuildFlags{}}
	f.manifests.AddFlags(fs)
	f.kube.AddFlags(fs)
	f.image.AddFlags(fs)
	f.build.AddFlags(fs)
	fs.Var(listOf(&f.forwards, "LOCAL:REMOTE", parseForward), "port-forward", "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	f.forwardsGiven = fs.Changed("port-forward")
	return f
}

// The precedence of docs/config.md, field by field: the flag when given; for the registry then
// the developer's environment; then hotpod.yaml; then hotpod's default.
func TestProjectPrecedence(t *testing.T) {
	root, sub := projectDir(t)
	type want struct {
		ns, context, repo, base string
		files                   []string
		chart                   bool
		values                  []string
		set                     map[string]any
		forwards                string
	}
	fromFile := want{ns: "shop-dev", context: "kind-shop", repo: "registry.example.com/file", base: "registry.example.com/base/file:1",
		chart: true, values: []string{filepath.Join(root, "chart/values-dev.yaml")},
		set: map[string]any{"replicas": 2, "image.tag": "dev"}, forwards: "8080:deployment/a:8080 9000:9000"}
	tests := []struct {
		name string
		env  string // HOTPOD_DEFAULT_REPO
		args []string
		want want
	}{
		{"the file fills in every flag not given", "", nil, fromFile},
		{"flags win", "", []string{"-n", "mine", "--context", "other", "--default-repo", "flag.example.com/me", "--base-image", "scratch", "--port-forward", "7000:7000"},
			want{ns: "mine", context: "other", repo: "flag.example.com/me", base: "scratch", chart: true, values: fromFile.values, set: fromFile.set, forwards: "7000:7000"}},
		{"the environment wins over the file's defaultRepo", "env.example.com/dev", nil,
			func() want { w := fromFile; w.repo = "env.example.com/dev"; return w }()},
		{"--default-repo wins over the environment", "env.example.com/dev", []string{"--default-repo", "flag.example.com/me"},
			func() want { w := fromFile; w.repo = "flag.example.com/me"; return w }()},
		{"-f replaces the file's manifests", "", []string{"-f", "../../k8s/app.yaml"},
			func() want {
				w := fromFile
				w.files, w.chart, w.values, w.set = []string{"../../k8s/app.yaml"}, false, nil, nil
				return w
			}()},
		{"--values and --set go over the file's chart", "", []string{"--values", "../../chart/values-dev.yaml", "--set", "replicas=3", "--set", "extra=a,b"},
			func() want {
				w := fromFile
				w.values = []string{filepath.Join(root, "chart/values-dev.yaml"), filepath.Join(root, "chart/values-dev.yaml")}
				w.set = map[string]any{"replicas": "3", "image.tag": "dev", "extra": "a,b"}
				return w
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOTPOD_DEFAULT_REPO", tt.env)
			t.Setenv("KO_DOCKER_REPO", "")
			p, err := loadProject(Env{Dir: sub}, parseFlags(t, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			var fws []string
			for _, f := range p.forwards {
				fws = append(fws, f.String())
			}
			got := want{ns: p.kube.Namespace, context: p.kube.Context, repo: p.repo, base: p.base,
				files: p.manifests.Filenames, chart: p.helm != nil, forwards: strings.Join(fws, " ")}
			if p.helm != nil {
				got.values, got.set = p.helm.ValuesFiles, p.helm.Set
				if p.helm.Chart != filepath.Join(root, "chart") {
					t.Errorf("chart %s, want the file's, resolved against its directory", p.helm.Chart)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
			if p.dir != root {
				t.Errorf("builds run in %s, want hotpod.yaml's directory %s", p.dir, root)
			}
		})
	}
}

// What the manifests need built, with each service's settings: ko:// references (listed in
// hotpod.yaml or not) and the images built elsewhere that a service claims, each as written.
func TestProjectImages(t *testing.T) {
	root, sub := projectDir(t)
	objs, err := manifest.Read(strings.NewReader(`apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  template:
    spec:
      containers:
      - {name: a, image: ko://example.com/shop/a/cmd/server}
      - {name: b, image: ko://example.com/shop/b/cmd/server}
      - {name: legacy, image: "registry.example.com/shop/legacy:1.4"}
      - {name: other, image: "registry.example.com/shop/other:1"}
      - {name: canary, image: "registry.example.com/shop/legacy@sha256:0000000000000000000000000000000000000000000000000000000000000000"}
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		// per image: name, service, base, ldflags, gcflags, tags
		want map[string][6]string
	}{
		{"hotpod.yaml's settings", nil, map[string][6]string{
			"ko://example.com/shop/a/cmd/server":        {"a", "", "registry.example.com/base/a:1", "-X main.v=a", "all=-N -l", ""},
			"ko://example.com/shop/b/cmd/server":        {"b/cmd/server", "", "registry.example.com/base/file:1", "-s -w", "all=-N -l", ""},
			"registry.example.com/shop/legacy:1.4":      {"legacy", "registry.example.com/shop/legacy", "", "-s -w", "all=-N -l", "netgo"},
			"registry.example.com/shop/legacy@sha256:0": {"legacy", "registry.example.com/shop/legacy", "", "-s -w", "all=-N -l", "netgo"},
		}},
		{"flags given win over every service's", []string{"--ldflags", "-w", "--base-image", "scratch", "--tags", "osusergo"}, map[string][6]string{
			"ko://example.com/shop/a/cmd/server":        {"a", "", "scratch", "-w", "all=-N -l", "osusergo"},
			"ko://example.com/shop/b/cmd/server":        {"b/cmd/server", "", "scratch", "-w", "all=-N -l", "osusergo"},
			"registry.example.com/shop/legacy:1.4":      {"legacy", "registry.example.com/shop/legacy", "", "-w", "all=-N -l", "osusergo"},
			"registry.example.com/shop/legacy@sha256:0": {"legacy", "registry.example.com/shop/legacy", "", "-w", "all=-N -l", "osusergo"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := loadProject(Env{Dir: sub}, parseFlags(t, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			images, err := p.images(objs)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][6]string{}
			for _, im := range images {
				o := im.spec.Options
				key := im.key
				if strings.Contains(key, "@sha256:") {
					key = key[:strings.Index(key, "@sha256:")+len("@sha256:0")]
				}
				got[key] = [6]string{im.name, im.service, im.spec.Base, o.LDFlags, o.GCFlags, o.Tags}
				if !slices.Contains(o.Env, "GOFLAGS=-mod=mod") {
					t.Errorf("%s: env %q lacks the project's build env", im.key, o.Env)
				}
				if im.spec.Image != "" && (im.spec.Image != im.key || im.spec.Binary != "/usr/local/bin/legacy" || im.spec.Main != filepath.Join(root, "legacy")) {
					t.Errorf("%s: built elsewhere as %+v", im.key, im.spec)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %v\nwant %v", got, tt.want)
			}
			unused := p.unused(images)
			if len(unused) != 0 {
				t.Errorf("unused services %q: both are used", unused)
			}
			a := images[0]
			if b := a.built(appimageResult("ref")); b.Ready != "tcp:9090" || b.StopSignal != "INT" || b.Grace.String() != "7s" || b.StopPolicy != "kill" {
				t.Errorf("service a's agent settings did not reach the rewrite: %+v", b)
			}
		})
	}
}

// A service no manifest uses is named: a typo in its image would otherwise go unnoticed.
func TestProjectUnusedService(t *testing.T) {
	_, sub := projectDir(t)
	p, err := loadProject(Env{Dir: sub}, parseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := manifest.Read(strings.NewReader("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: ko://example.com/shop/a/cmd/server}]\n"), "test")
	images, err := p.images(objs)
	if err != nil {
		t.Fatal(err)
	}
	got := p.unused(images)
	if len(got) != 1 || !strings.Contains(got[0], "service legacy: no container of the manifests runs registry.example.com/shop/legacy") {
		t.Fatalf("unused: %q", got)
	}
}

// BuildFlags.For: a flag given wins, a service's field next, then the flag's default.
func TestBuildFlagsFor(t *testing.T) {
	ld, tags := config.Flags(""), config.List{"netgo"}
	svc := config.Build{LDFlags: &ld, Tags: &tags, Env: config.Env{"A=1"}, PostBuild: &config.Args{"upx", "-1"}}
	f := parseFlags(t, "--gcflags", "all=-N -l", "--post-build", "strip")
	got := f.build.For(svc)
	want := build.Options{LDFlags: "", GCFlags: "all=-N -l", Tags: "netgo", Env: []string{"A=1"}, PostBuild: []string{"strip"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
	if f.build.Env != nil {
		t.Fatalf("For changed the flags' own env: %q", f.build.Env)
	}
}

// --debug wins over hotpod.yaml's build flags too: the debugger needs the DWARF that -s and -w
// drop, and unoptimised code; the rest of the service's ldflags stays.
func TestBuildFlagsForDebug(t *testing.T) {
	ld, gc := config.Flags("-s -X main.version=1 -w"), config.Flags("-B")
	f := parseFlags(t)
	f.build.debug = true
	got := f.build.For(config.Build{LDFlags: &ld, GCFlags: &gc})
	if got.LDFlags != "-X main.version=1" || got.GCFlags != debugGCFlags || !got.KeepPaths {
		t.Fatalf("For under --debug: ldflags %q gcflags %q keep paths %v; want %q, %q, true", got.LDFlags, got.GCFlags, got.KeepPaths, "-X main.version=1", debugGCFlags)
	}
}

func appimageResult(ref string) appimage.Result {
	return appimage.Result{Built: manifest.Built{Ref: ref, Name: "server"}}
}

// -n refuses manifests that name another namespace, as kubectl's does; hotpod.yaml's namespace
// is only where objects without one go.
func TestNamespacesExplicit(t *testing.T) {
	_, sub := projectDir(t)
	for _, tt := range []struct {
		args     []string
		explicit bool
	}{{nil, false}, {[]string{"-n", "mine"}, true}} {
		p, err := loadProject(Env{Dir: sub}, parseFlags(t, tt.args...))
		if err != nil {
			t.Fatal(err)
		}
		got := namespaces(p.kube, &kube.Client{Namespace: p.kube.Namespace})
		if got.Explicit != tt.explicit || got.Default != p.kube.Namespace {
			t.Errorf("hotpod %v: %+v, want explicit %v", tt.args, got, tt.explicit)
		}
	}
}
