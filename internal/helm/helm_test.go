package helm_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hotpod/hotpod/internal/helm"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/testutil"
)

const chart = "testdata/shop"

// TestRender renders the test chart as `helm template shop testdata/shop -n shop-dev
// -f values-dev.yaml --set ... --include-crds` would, and checks the objects against the golden
// file and, for what matters most, one by one.
func TestRender(t *testing.T) {
	objs, err := helm.Render(t.Context(), helm.Options{
		Chart:       chart,
		ValuesFiles: []string{chart + "/values-dev.yaml"},
		Set:         map[string]any{"port": 9090, "labels.team": "shop,payments", "labels.tier": "true"},
		SetString:   map[string]string{"labels.build": "0042"},
		Release:     "shop",
		Namespace:   "shop-dev",
	})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	testutil.Golden(t, "testdata/render.golden.yaml", []byte(b.String()))

	// CRDs first, pre-install hooks by weight, the manifests in Helm's install order (Service
	// before workloads), post-install hooks last; test and delete hooks left out.
	want := []string{
		"CustomResourceDefinition/widgets.shop.example.com",
		"Secret/shop-seed", "Job/shop-migrate",
		"Service/shop-api", "Deployment/shop-api", "StatefulSet/shop-cache",
		"ConfigMap/shop-installed",
	}
	if got := names(objs); !slices.Equal(got, want) {
		t.Fatalf("objects:\n got %q\nwant %q", got, want)
	}
	dep := find(t, objs, "Deployment/shop-api")
	if n, _, _ := unstructuredInt(dep.Object, "spec", "replicas"); n != 3 {
		t.Errorf("replicas = %d, want 3 from values-dev.yaml", n)
	}
	refs, err := manifest.KoRefs(objs)
	if err != nil || !slices.Equal(refs, []string{"example.com/shop/cmd/api"}) {
		t.Errorf("ko refs = %q, %v: the ko:// image in values must survive rendering", refs, err)
	}
	c := container(t, dep)
	if got, want := c["args"], []any{"--port=9090", "--namespace=shop-dev", "--debug=true"}; !equalAny(got, want) {
		t.Errorf("args = %v, want %v (set port as a number, the release namespace, debug from values-dev)", got, want)
	}
	if _, ok := c["env"]; ok {
		t.Error("env set: .Capabilities.APIVersions had the Widget API without APIVersions")
	}
	labels := dep.GetLabels()
	if labels["app.kubernetes.io/instance"] != "shop" {
		t.Errorf("instance label %q, want the release name", labels["app.kubernetes.io/instance"])
	}
	tmpl, _, _ := unstructuredMap(dep.Object, "spec", "template", "metadata", "labels")
	if tmpl["build"] != "0042" || tmpl["team"] != "shop,payments" || tmpl["tier"] != true {
		t.Errorf("pod labels build=%#v team=%#v tier=%#v: want \"0042\" (set-string), \"shop,payments\" (one value), true (--set typing)",
			tmpl["build"], tmpl["team"], tmpl["tier"])
	}
	cache := container(t, find(t, objs, "StatefulSet/shop-cache"))
	if got, want := cache["args"], []any{"--maxmemory=64Mi", "--port=6379"}; !equalAny(got, want) {
		t.Errorf("subchart args = %v, want %v (the parent's cache.memory over the subchart's default)", got, want)
	}
}

func TestRenderOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  helm.Options
		want  []string
		check func(t *testing.T, objs []*manifest.Object)
	}{
		{
			name: "defaults: release named after the chart, namespace default",
			opts: helm.Options{Chart: chart},
			want: []string{"CustomResourceDefinition/widgets.shop.example.com", "Secret/shop-seed", "Job/shop-migrate",
				"Service/shop-api", "Deployment/shop-api", "StatefulSet/shop-cache", "ConfigMap/shop-installed"},
			check: func(t *testing.T, objs []*manifest.Object) {
				c := container(t, find(t, objs, "Deployment/shop-api"))
				if got, want := c["args"], []any{"--port=8080", "--namespace=default", "--debug=false"}; !equalAny(got, want) {
					t.Errorf("args = %v, want %v", got, want)
				}
			},
		},
		{
			name: "no hooks, no CRDs",
			opts: helm.Options{Chart: chart, Release: "r", NoHooks: true, SkipCRDs: true},
			want: []string{"Service/r-api", "Deployment/r-api", "StatefulSet/r-cache"},
		},
		{
			name: "a subchart's condition switched off by a typed set",
			opts: helm.Options{Chart: chart, Release: "r", NoHooks: true, SkipCRDs: true, Set: map[string]any{"cache.enabled": false}},
			want: []string{"Service/r-api", "Deployment/r-api"},
		},
		{
			name: "a subchart's condition switched off by a string, as --set reads it",
			opts: helm.Options{Chart: chart, Release: "r", NoHooks: true, SkipCRDs: true, Set: map[string]any{"cache.enabled": "false"}},
			want: []string{"Service/r-api", "Deployment/r-api"},
		},
		{
			name: "capabilities from the cluster",
			opts: helm.Options{Chart: chart, Release: "r", NoHooks: true, SkipCRDs: true, KubeVersion: "v1.33.2",
				APIVersions: []string{"shop.example.com/v1/Widget"}},
			want: []string{"Service/r-api", "Deployment/r-api", "StatefulSet/r-cache"},
			check: func(t *testing.T, objs []*manifest.Object) {
				if _, ok := container(t, find(t, objs, "Deployment/r-api"))["env"]; !ok {
					t.Error("no env: .Capabilities.APIVersions did not get the Widget API")
				}
			},
		},
		{
			name: "a list in --set syntax and a ko:// image by set",
			opts: helm.Options{Chart: chart, Release: "r", NoHooks: true, SkipCRDs: true,
				Set: map[string]any{"image": "ko://example.com/other/cmd/x", "labels.a": "{x,y}"}},
			want: []string{"Service/r-api", "Deployment/r-api", "StatefulSet/r-cache"},
			check: func(t *testing.T, objs []*manifest.Object) {
				refs, err := manifest.KoRefs(objs)
				if err != nil || !slices.Equal(refs, []string{"example.com/other/cmd/x"}) {
					t.Errorf("ko refs = %q, %v", refs, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := helm.Render(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(objs); !slices.Equal(got, tt.want) {
				t.Fatalf("objects:\n got %q\nwant %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, objs)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	// A copy of the chart without its subchart: a dependency Chart.yaml names but charts/ lacks.
	noDep := copyChart(t)
	if err := os.RemoveAll(filepath.Join(noDep, "charts")); err != nil {
		t.Fatal(err)
	}
	badTemplate := copyChart(t)
	write(t, filepath.Join(badTemplate, "templates", "broken.yaml"), "kind: {{ .Values.nothing.deeper }}\n")
	noName := copyChart(t)
	write(t, filepath.Join(noName, "templates", "noname.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
	library := copyChart(t)
	write(t, filepath.Join(library, "Chart.yaml"), "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n")
	badValues := copyChart(t)
	write(t, filepath.Join(badValues, "bad.yaml"), "replicas: [\n")
	schema := copyChart(t)
	write(t, filepath.Join(schema, "values.schema.json"), `{"type":"object","properties":{"replicas":{"type":"integer","maximum":5}}}`)

	tests := []struct {
		name string
		opts helm.Options
		want string
	}{
		{"no chart", helm.Options{Chart: t.TempDir()}, "no Chart.yaml there"},
		{"missing dependency", helm.Options{Chart: noDep}, "missing in charts/ directory: cache: run helm dependency build " + noDep},
		{"template error", helm.Options{Chart: badTemplate}, "broken.yaml"},
		{"object without a name", helm.Options{Chart: noName}, "noname.yaml"},
		{"library chart", helm.Options{Chart: library}, "is a library chart"},
		{"values file missing", helm.Options{Chart: chart, ValuesFiles: []string{chart + "/nothere.yaml"}}, "values file testdata/shop/nothere.yaml"},
		{"values file not YAML", helm.Options{Chart: badValues, ValuesFiles: []string{badValues + "/bad.yaml"}}, "bad.yaml"},
		{"values schema", helm.Options{Chart: schema, Set: map[string]any{"replicas": 9}}, "replicas"},
		{"release name", helm.Options{Chart: chart, Release: "Shop_1"}, "set release:"},
		{"map in set", helm.Options{Chart: chart, Set: map[string]any{"image": map[string]any{"tag": "x"}}}, "values file"},
		{"kube version", helm.Options{Chart: chart, KubeVersion: "one"}, "Kubernetes version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := helm.Render(t.Context(), tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.want)
			}
		})
	}
}

func names(objs []*manifest.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func find(t *testing.T, objs []*manifest.Object, name string) *manifest.Object {
	t.Helper()
	for _, o := range objs {
		if o.GetKind()+"/"+o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s in %q", name, names(objs))
	return nil
}

func container(t *testing.T, o *manifest.Object) map[string]any {
	t.Helper()
	spec, _ := o.Object["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	cs, _ := pod["containers"].([]any)
	if len(cs) == 0 {
		t.Fatalf("%s has no containers", o.GetName())
	}
	c, _ := cs[0].(map[string]any)
	return c
}

func unstructuredInt(obj map[string]any, path ...string) (int64, bool, error) {
	var v any = obj
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch n := v.(type) {
	case int64:
		return n, true, nil
	case float64:
		return int64(n), true, nil
	}
	return 0, false, nil
}

func unstructuredMap(obj map[string]any, path ...string) (map[string]any, bool, error) {
	var v any = obj
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	m, ok := v.(map[string]any)
	return m, ok, nil
}

func equalAny(got any, want []any) bool {
	g, ok := got.([]any)
	return ok && slices.Equal(g, want)
}

// copyChart copies the test chart into a temporary directory.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "shop")
	if err := os.CopyFS(dst, os.DirFS(chart)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
