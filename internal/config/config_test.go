package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/testutil"
)

// TestGood loads each project under testdata/good and compares the resolved config (services
// with inherited build settings, absolute paths) with its golden file.
func TestGood(t *testing.T) {
	dirs, err := filepath.Glob("testdata/good/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no projects under testdata/good")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c, err := config.Load(filepath.Join(dir, config.FileName))
			if err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(b), abs, "$DIR") + "\n"
			testutil.Golden(t, filepath.Join(dir, "config.golden.json"), []byte(got))
		})
	}
}

// TestBad loads each file under testdata/bad: each must fail with one line that names the file
// (and the line, where the file has one), as recorded in testdata/bad.golden.
func TestBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	abs, err := filepath.Abs("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, f := range files {
		c, err := config.Load(f)
		if err == nil {
			t.Errorf("%s: loaded without error: %+v", f, c)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: error is more than one line: %q", f, msg)
		}
		if !strings.HasPrefix(msg, f+":") {
			t.Errorf("%s: error does not start with the file's name: %q", f, msg)
		}
		out.WriteString(strings.ReplaceAll(msg, abs, "$DIR") + "\n")
	}
	testutil.Golden(t, "testdata/bad.golden", []byte(out.String()))
}

func TestLocate(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	// No hotpod.yaml anywhere up from a fresh temp dir (unless the machine has one at / or in
	// TMPDIR's parents, which no test machine should).
	if _, err := config.Locate(deep); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Locate without a file: got %v, want ErrNotFound", err)
	}
	if _, err := config.Find(deep); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Find without a file: got %v, want ErrNotFound", err)
	}
	top := filepath.Join(root, "a", config.FileName)
	if err := os.WriteFile(top, []byte("namespace: top\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory named hotpod.yaml is not the file.
	if err := os.Mkdir(filepath.Join(root, "a", "b", config.FileName), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{filepath.Join(root, "a"), deep} {
		p, err := config.Locate(start)
		if err != nil || p != top {
			t.Errorf("Locate(%s) = %q, %v; want %s", start, p, err, top)
		}
	}
	c, err := config.Find(deep)
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "top" || c.Path != top || c.Dir != filepath.Dir(top) {
		t.Errorf("Find: namespace %q path %q dir %q", c.Namespace, c.Path, c.Dir)
	}
	// The nearest file wins.
	near := filepath.Join(deep, config.FileName)
	if err := os.WriteFile(near, []byte("namespace: near\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := config.Find(deep); err != nil || c.Namespace != "near" {
		t.Errorf("Find with a nearer file: %+v, %v", c, err)
	}
}

// TestRelativePaths checks that paths mean the same from any working directory: they are
// resolved against the file's directory.
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"k8s", "cmd/legacy"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	doc := "services:\n  - {image: registry.example.com/xy, main: ./cmd/legacy, binary: /x}\nmanifests: {files: [k8s]}\n"
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	c, err := config.Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "cmd", "legacy"); c.Services[0].Main != want {
		t.Errorf("main = %q, want %q", c.Services[0].Main, want)
	}
	if want := filepath.Join(dir, "k8s"); len(c.Manifests.Files) != 1 || c.Manifests.Files[0] != want {
		t.Errorf("files = %q, want [%q]", c.Manifests.Files, want)
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		service, image string
		want           bool
	}{
		{"ko://example.com/a", "ko://example.com/a", true},
		{"ko://example.com/a", "ko://example.com/a/b", false},
		{"ko://example.com/a", "example.com/a", false},
		{"registry.example.com/shop/legacy", "registry.example.com/shop/legacy", true},
		{"registry.example.com/shop/legacy", "registry.example.com/shop/legacy:1.4", true},
		{"registry.example.com/shop/legacy", "registry.example.com/shop/legacy@sha256:" + strings.Repeat("a", 64), true},
		{"registry.example.com/shop/legacy", "registry.example.com/shop/legacy-v2:1", false},
		{"registry.example.com/shop/legacy", "other.example.com/shop/legacy:1", false},
		{"registry.example.com/shop/legacy:1.4", "registry.example.com/shop/legacy:1.4", true},
		{"registry.example.com/shop/legacy:1.4", "registry.example.com/shop/legacy:1.5", false},
		{"registry.example.com/shop/legacy:1.4", "registry.example.com/shop/legacy", false},
		{"localhost:5000/legacy", "localhost:5000/legacy:dev", true},
		{"nginx", "docker.io/library/nginx:1.27", true},
		{"docker.io/library/nginx", "nginx", true},
		{"nginx", "not a reference", false},
	}
	for _, tt := range tests {
		s := config.Service{Image: tt.service}
		if got := s.Matches(tt.image); got != tt.want {
			t.Errorf("service %s matches %s = %v, want %v", tt.service, tt.image, got, tt.want)
		}
	}
	c := &config.Config{Services: []config.Service{{Image: "ko://example.com/a"}, {Image: "registry.example.com/bee"}}}
	if s := c.Service("registry.example.com/bee:v3"); s == nil || s.Image != "registry.example.com/bee" {
		t.Errorf("Service(registry.example.com/bee:v3) = %+v", s)
	}
	if s := c.Service("registry.example.com/cee:v3"); s != nil {
		t.Errorf("Service(registry.example.com/c:v3) = %+v, want nil", s)
	}
}

// TestApply checks the build settings' precedence: the service's, then the project's, then what
// the command line had.
func TestApply(t *testing.T) {
	c, err := config.Load("testdata/good/full/" + config.FileName)
	if err != nil {
		t.Fatal(err)
	}
	flags := build.Options{LDFlags: "-s -w", Tags: "fromflag", Env: []string{"A=1"}}
	var ko, legacy build.Options = flags, flags
	c.Services[0].Apply(&ko)
	c.Services[1].Apply(&legacy)
	wantKo := build.Options{LDFlags: "-s -w -X main.version=dev", Tags: "netgo", Quick: true,
		Env: []string{"A=1", "GOPRIVATE=example.com", "GOFLAGS=-mod=mod"}}
	wantLegacy := build.Options{LDFlags: "-s -w", GCFlags: "all=-N -l", Tags: "netgo,osusergo",
		Env: []string{"A=1", "GOPRIVATE=example.com"}, PostBuild: []string{"upx", "-q", "-1"}}
	if !reflect.DeepEqual(ko, wantKo) {
		t.Errorf("ko service:\n got %+v\nwant %+v", ko, wantKo)
	}
	if !reflect.DeepEqual(legacy, wantLegacy) {
		t.Errorf("legacy service:\n got %+v\nwant %+v", legacy, wantLegacy)
	}
	if !reflect.DeepEqual(flags.Env, []string{"A=1"}) {
		t.Errorf("Apply changed the caller's Env: %q", flags.Env)
	}
	// The anchors project sets ldflags to "" explicitly: that clears the flag's default.
	a, err := config.Load("testdata/good/anchors/" + config.FileName)
	if err != nil {
		t.Fatal(err)
	}
	o := flags
	a.Services[0].Apply(&o)
	if o.LDFlags != "" || o.Tags != "debug" {
		t.Errorf("anchors service a: ldflags %q tags %q, want \"\" and debug", o.LDFlags, o.Tags)
	}
	o = flags
	a.Services[1].Apply(&o)
	if o.LDFlags != "-w" {
		t.Errorf("anchors service b: ldflags %q, want -w", o.LDFlags)
	}
}

func TestParsePortForward(t *testing.T) {
	tests := []struct {
		in   string
		want config.PortForward
	}{
		{"8080:80", config.PortForward{Local: 8080, Remote: 80}},
		{"0:80", config.PortForward{Local: 0, Remote: 80}},
		{"8080:deployment/api:80", config.PortForward{Local: 8080, Kind: "deployment", Name: "api", Remote: 80}},
		{"8080:Deploy/api:80", config.PortForward{Local: 8080, Kind: "deployment", Name: "api", Remote: 80}},
		{"sts/db:5432", config.PortForward{Local: 5432, Kind: "statefulset", Name: "db", Remote: 5432}},
		{"1:po/x:2", config.PortForward{Local: 1, Kind: "pod", Name: "x", Remote: 2}},
	}
	for _, tt := range tests {
		got, err := config.ParsePortForward(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParsePortForward(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if err == nil {
			back, err := config.ParsePortForward(got.String())
			if err != nil || back != got {
				t.Errorf("ParsePortForward(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
			}
		}
	}
	for _, bad := range []string{"", "8080", "a:80", "8080:0", "8080:65536", "-1:80", "8080:svc/api:80", "8080:deployment/:80", "8080:deployment:80", "1:2:3:4", "8080:deployment/a/b:80"} {
		if _, err := config.ParsePortForward(bad); err == nil || !strings.Contains(err.Error(), "LOCAL:REMOTE") {
			t.Errorf("ParsePortForward(%q): %v, want an error that shows the form", bad, err)
		}
	}
}

// FuzzLoad feeds arbitrary bytes to the reader: it must never panic, every error must be one
// line that starts with the file's name, and whatever loads must load again the same after a
// round trip through its own paths.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/good/*/hotpod.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	dir := f.TempDir()
	for _, d := range []string{"k8s", "cmd/legacy", "charts/shop"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "charts/shop/Chart.yaml"), []byte("name: shop\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, config.FileName)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, path)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, path+":") {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		if c.Path != path || c.Dir != dir {
			t.Fatalf("path %q dir %q", c.Path, c.Dir)
		}
		for _, s := range c.Services {
			if s.Name == "" || s.Image == "" || s.Main == "" {
				t.Fatalf("a loaded service lacks name, image or main: %+v", s)
			}
			if !s.Matches(s.Image) {
				t.Fatalf("service %s does not match its own image", s.Image)
			}
		}
	})
}
