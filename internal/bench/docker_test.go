package bench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Each edit's build context is a fresh copy of the module (no dot files), with an empty build
// cache (B, C) or a copy of the warm one (D), as docker build would see it.
func TestDockerContexts(t *testing.T) {
	module := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":     "module example.com/app\n\ngo 1.24\n",
		"main.go":    "package main\n\nfunc main() {}\n",
		".git/HEAD":  "ref: refs/heads/main\n",
		"sub/x.go":   "package sub\n",
		".hidden.go": "package main\n",
	} {
		p := filepath.Join(module, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		variant, ldflags string
	}{{DockerVendor, ""}, {DockerVendorW, "-w"}, {DockerGocache, ""}} {
		t.Run(c.variant, func(t *testing.T) {
			d, err := newDockerContexts(t.Context(), c.variant, module, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			first, env, ldflags, err := d.next(true)
			if err != nil {
				t.Fatal(err)
			}
			if ldflags != c.ldflags {
				t.Errorf("ldflags %q, want %q", ldflags, c.ldflags)
			}
			for _, f := range []string{"go.mod", "main.go", "sub/x.go"} {
				if _, err := os.Stat(filepath.Join(first, f)); err != nil {
					t.Errorf("context lacks %s", f)
				}
			}
			for _, f := range []string{".git", ".hidden.go", "vendor"} {
				if _, err := os.Stat(filepath.Join(first, f)); err == nil {
					t.Errorf("context has %s", f)
				}
			}
			if !slices.Contains(env, "GOGC=100") || slices.ContainsFunc(env, func(s string) bool { return s == "GOFLAGS=-mod=vendor" }) {
				t.Errorf("env %v: want Go's default GOGC and no -mod=vendor without dependencies", env)
			}
			cache := env[0][len("GOCACHE="):]
			if err := os.MkdirAll(cache, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cache, "entry"), []byte("built"), 0o644); err != nil {
				t.Fatal(err)
			}
			second, env2, _, err := d.next(false)
			if err != nil {
				t.Fatal(err)
			}
			if second == first {
				t.Fatal("the second edit reused the first context")
			}
			_, err = os.Stat(filepath.Join(env2[0][len("GOCACHE="):], "entry"))
			if warm := c.variant == DockerGocache; warm != (err == nil) {
				t.Errorf("second context's cache has the first build's entry: %v, want %v", err == nil, warm)
			}
		})
	}
}
