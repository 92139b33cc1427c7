package bench

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hotpod/hotpod/examples"
)

// workload is a main package the bench edits and rebuilds, in a private copy (built-in
// workloads) or in place (a user's package, restored at the end).
type workload struct {
	name       string
	dir        string // module directory the builds run in
	file       string // the file holding the time.Unix(0, N) line
	importPath string
	original   []byte
}

var calledLine = regexp.MustCompile(`time\.Unix\(0, [0-9]*\)`)

// prepare makes a workload ready to edit: the built-in ones (examples.Builtin) are written from the
// copies built into hotpod (package examples; seedapp's ~50 MB blob generated), so they need no
// checkout;
// anything else is a directory with a main package. repoRoot is not read for them.
func prepare(ctx context.Context, name, repoRoot, tmp string) (*workload, error) {
	switch name {
	case "hello":
		dir := filepath.Join(tmp, "hello")
		if err := writeSources(name, dir); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.24\n"), 0o644); err != nil {
			return nil, err
		}
		return newWorkload(name, dir, filepath.Join(dir, "main.go"), "example.com/hello")
	case "seedapp":
		dir := filepath.Join(tmp, "seedapp")
		if err := writeSources(name, dir); err != nil {
			return nil, err
		}
		gen := exec.CommandContext(ctx, "go", "run", "./gen")
		if _, err := os.Stat(filepath.Join(dir, "blob", "blob.bin")); err == nil {
			gen = exec.CommandContext(ctx, "true")
		}
		gen.Dir = dir
		if out, err := gen.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("seedapp: generate the blob: %v: %s", err, out)
		}
		return newWorkload(name, dir, filepath.Join(dir, "main.go"), "github.com/hotpod/hotpod/examples/seedapp")
	case "drainapp", "drainapp30", "kubeapp":
		dir := filepath.Join(tmp, name)
		if err := writeSources(name, dir); err != nil {
			return nil, err
		}
		module := strings.TrimSuffix(name, "30") // drainapp30 is drainapp's module with an asset
		return newWorkload(name, dir, filepath.Join(dir, "main.go"), "github.com/hotpod/hotpod/examples/"+module)
	}
	// A user's main package: edited in place, restored afterwards.
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.ImportPath}}|{{.Name}}|{{.Module.Dir}}", ".")
	cmd.Dir = abs
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("workload %s: not a Go package directory (or one of the built-in %s): %v", name, strings.Join(examples.Builtin, ", "), err)
	}
	parts := strings.Split(strings.TrimSpace(string(out)), "|")
	if len(parts) != 3 || parts[1] != "main" {
		return nil, fmt.Errorf("workload %s: package %s is not package main", name, parts[0])
	}
	files, _ := filepath.Glob(filepath.Join(abs, "*.go"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && calledLine.Match(b) {
			return newWorkload(filepath.Base(abs), parts[2], f, parts[0])
		}
	}
	return nil, fmt.Errorf("workload %s: no file has a line with time.Unix(0, N) for the bench to rewrite: add `var called = time.Unix(0, 0)` and serve called.UnixNano() on GET /called", name)
}

func newWorkload(name, dir, file, importPath string) (*workload, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if !calledLine.Match(b) {
		return nil, fmt.Errorf("workload %s: %s has no time.Unix(0, N) line", name, file)
	}
	return &workload{name: name, dir: dir, file: file, importPath: importPath, original: b}, nil
}

// edit rewrites the timestamp line to now, as the original measurement's sed did, and returns
// the stamp.
func (w *workload) edit() (int64, error) {
	now := time.Now().UnixNano()
	b := calledLine.ReplaceAll(w.original, []byte("time.Unix(0, "+strconv.FormatInt(now, 10)+")"))
	tmp := w.file + ".bench-tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return 0, err
	}
	return now, os.Rename(tmp, w.file)
}

func (w *workload) restore() error { return os.WriteFile(w.file, w.original, 0o644) }

// writeSources writes the embedded sources of the built-in workload name into dir.
func writeSources(name, dir string) error {
	files, err := examples.Sources(name)
	if err != nil {
		return err
	}
	for n, b := range files {
		dst := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// moduleFiles is the module at dir without version control and hidden files.
func moduleFiles(dir string) fs.FS {
	return hideDotFiles{os.DirFS(dir)}
}

type hideDotFiles struct{ fs.FS }

func (h hideDotFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(h.FS, name)
	kept := es[:0]
	for _, e := range es {
		if !strings.HasPrefix(e.Name(), ".") {
			kept = append(kept, e)
		}
	}
	return kept, err
}

// vendoredCopy copies the module at dir (without dot files) to dst, with its dependencies in
// dst/vendor when it has any: the builds made from it have no way to the module proxy. It
// reports whether dst is vendored.
func vendoredCopy(ctx context.Context, dir, dst string) (bool, error) {
	if err := os.CopyFS(dst, moduleFiles(dir)); err != nil {
		return false, fmt.Errorf("copy the module: %w", err)
	}
	return vendor(ctx, dst)
}

// vendor copies the module's dependencies into dir/vendor, when it has any.
func vendor(ctx context.Context, dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "vendor", "modules.txt")); err == nil {
		return true, nil
	}
	list := exec.CommandContext(ctx, "go", "list", "-m", "all")
	list.Dir = dir
	out, err := list.Output()
	if err != nil {
		return false, fmt.Errorf("go list -m all: %w", err)
	}
	if len(strings.Fields(string(out))) <= 1 {
		return false, nil
	}
	v := exec.CommandContext(ctx, "go", "mod", "vendor")
	v.Dir = dir
	if out, err := v.CombinedOutput(); err != nil {
		return false, fmt.Errorf("go mod vendor: %v: %s", err, out)
	}
	return true, nil
}

// manifest is the Deployment every strategy runs: one replica, the workload's image.
func (w *workload) manifest(image string) string { return w.manifestWith(image, "", "") }

// manifestWith is manifest with extra YAML lines for the container and for the pod spec, each
// line indented for its place.
func (w *workload) manifestWith(image, container, pod string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: bench-%[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: bench-%[1]s}}
  template:
    metadata: {labels: {app: bench-%[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: %[2]s
        env: [{name: PORT, value: "8080"}]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
%[3]s%[4]s`, w.name, image, container, pod)
}
