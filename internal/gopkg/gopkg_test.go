package gopkg_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/gopkg"
)

func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFindsLocalDepsAndEmbeds(t *testing.T) {
	dir := writeModule(t, map[string]string{
		"go.mod":                 "module example.com/svc\n\ngo 1.24\n",
		"cmd/svc/main.go":        "package main\n\nimport (\n\t_ \"example.com/svc/internal/web\"\n\t_ \"fmt\"\n)\n\nfunc main() {}\n",
		"internal/web/w.go":      "package web\n\nimport _ \"embed\"\n\n//go:embed page.html\nvar Page string\n",
		"internal/web/page.html": "<p>hi</p>",
		"internal/unused/u.go":   "package unused\n",
	})
	m, err := gopkg.Load(t.Context(), dir, "./cmd/svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "svc" || m.ImportPath != "example.com/svc/cmd/svc" || m.ModuleDir != dir {
		t.Fatalf("got %+v", m)
	}
	wantDirs := []string{filepath.Join(dir, "cmd/svc"), filepath.Join(dir, "internal/web")}
	if !slices.Equal(m.Dirs, wantDirs) {
		t.Fatalf("dirs %v, want %v", m.Dirs, wantDirs)
	}
	if want := []string{filepath.Join(dir, "internal/web/page.html")}; !slices.Equal(m.EmbedFiles, want) {
		t.Fatalf("embeds %v, want %v", m.EmbedFiles, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := writeModule(t, map[string]string{
		"go.mod":     "module example.com/lib\n\ngo 1.24\n",
		"lib.go":     "package lib\n",
		"bad/bad.go": "package main\n\nimport \"example.com/nope\"\n\nfunc main() {}\n",
	})
	for pkg, want := range map[string]string{
		".":      "not a main package",
		"./none": "none",
		"./bad":  "nope",
	} {
		_, err := gopkg.Load(t.Context(), dir, pkg, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want an error with %q", pkg, err, want)
		}
	}
}

// Run outside the module that holds the package, the go command advises go get or go help
// modules; hotpod says where to run instead. A missing import keeps go's advice: go get is the fix.
func TestLoadOutsideTheModuleSaysWhereToRun(t *testing.T) {
	mod := writeModule(t, map[string]string{
		"go.mod":         "module example.com/svc\n\ngo 1.24\n",
		"main.go":        "package main\n\nfunc main() {}\n",
		"bad/main.go":    "package main\n\nimport _ \"example.com/nope\"\n\nfunc main() {}\n",
		"sub/go.mod":     "module example.com/sub\n\ngo 1.24\n",
		"sub/lib/lib.go": "package lib\n",
	})
	bare := writeModule(t, map[string]string{"main.go": "package main\n\nfunc main() {}\n"})
	const fix = "run hotpod in your module's directory"
	cases := []struct {
		dir, pkg   string
		want, gone string
	}{
		{bare, ".", "no go.mod in " + bare, "go help modules"},
		{bare, "example.com/svc", "no go.mod in " + bare, "go help modules"},
		{mod, "example.com/other/cmd", "the module in " + mod + " does not provide it", "go get"},
		{filepath.Join(mod, "sub"), "..", "outside main module", "go get"},
	}
	for _, c := range cases {
		_, err := gopkg.Load(t.Context(), c.dir, c.pkg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fix) || strings.Contains(err.Error(), c.gone) {
			t.Errorf("Load(%s, %s) = %v; want %q and %q, without %q", c.dir, c.pkg, err, c.want, fix, c.gone)
		}
	}
	_, err := gopkg.Load(t.Context(), mod, "./bad", nil)
	if err == nil || !strings.Contains(err.Error(), "go get example.com/nope") || strings.Contains(err.Error(), fix) {
		t.Errorf("a missing import: %v; want go's go get advice", err)
	}
}

// A file's shape changes with what decides the files and packages a build reads, and only then.
func TestShape(t *testing.T) {
	const base = "//go:build linux\n\npackage main\n\nimport (\n\t\"fmt\"\n\t_ \"embed\"\n)\n\n//go:embed page.html\nvar page string\n\nfunc main() { fmt.Println(\"v1\", page) }\n"
	for _, c := range []struct {
		name, src string
		same      bool
	}{
		{"a body", strings.Replace(base, `"v1"`, `"v2"`, 1), true},
		{"a comment and a new function", base + "\n// more\nfunc other() int { return 1 }\n", true},
		{"an import added", strings.Replace(base, "\"fmt\"\n", "\"fmt\"\n\t\"os\"\n", 1), false},
		{"an import renamed", strings.Replace(base, "\t\"fmt\"", "\tf \"fmt\"", 1), false},
		{"a build constraint", strings.Replace(base, "linux", "linux && amd64", 1), false},
		{"an embed pattern", strings.Replace(base, "page.html", "*.html", 1), false},
		{"the package", strings.Replace(base, "package main", "package other", 1), false},
	} {
		dir := t.TempDir()
		write := func(name, src string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		before, ok1 := gopkg.Shape(write("a.go", base))
		after, ok2 := gopkg.Shape(write("b.go", c.src))
		if !ok1 || !ok2 {
			t.Fatalf("%s: not parsed", c.name)
		}
		if (before == after) != c.same {
			t.Errorf("%s: shape unchanged %v, want %v", c.name, before == after, c.same)
		}
	}
	dir := t.TempDir()
	if _, ok := gopkg.Shape(filepath.Join(dir, "gone.go")); ok {
		t.Error("a missing file has a shape")
	}
	broken := filepath.Join(dir, "broken.go")
	os.WriteFile(broken, []byte("package main\nimport (\n"), 0o644)
	if _, ok := gopkg.Shape(broken); ok {
		t.Error("a file that does not parse has a shape")
	}
}
