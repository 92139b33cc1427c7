// Package initproject is `hotpod init`: it looks through a project for what hotpod.yaml should
// say (ko:// images in YAML files, kustomizations, Helm charts, Dockerfiles whose build stage
// runs go build of a main package, skaffold.yaml's artifacts and deployers), reports what it
// found and what it guessed, and writes hotpod.yaml, never over an existing one.
//
// It only reads: no go command, no network, no cluster. What it cannot know (how the manifests
// name an image built from a Dockerfile, which of several overlays is the dev one) it guesses,
// says so, and marks in the file.
package initproject

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hotpod/hotpod/internal/config"
)

// Project is what Detect proposes for hotpod.yaml. Paths are slash-separated and relative to the
// project directory.
type Project struct {
	Services  []Service
	Manifests Manifests
}

// Service is one image to build.
type Service struct {
	Image  string // ko://<import path>, or the repository the manifests use
	Main   string // for an image built elsewhere: ./dir of the main package
	Binary string // for an image built elsewhere: where the image keeps the binary
	// Notes are comments for the file: where each value came from, and what to check.
	Notes []string
}

// Manifests is at most one of Files, Kustomize and Helm.
type Manifests struct {
	Files     []string
	Kustomize string
	Helm      *Helm
	Note      string
}

// Helm is a local chart.
type Helm struct {
	Chart     string
	Values    []string
	Set       map[string]any
	Release   string
	Namespace string
}

// Finding is one thing Detect saw (or, with Guess, inferred and the user should check).
type Finding struct {
	File    string // slash-separated, relative to the project; "" for the project as a whole
	Line    int    // 0 when not known
	Message string
	Guess   bool
}

func (f Finding) String() string {
	kind := "found"
	if f.Guess {
		kind = "guessed"
	}
	where := f.File
	if f.Line > 0 {
		where = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	if where == "" {
		return kind + ": " + f.Message
	}
	return kind + ": " + where + ": " + f.Message
}

// Limits of the walk: init looks at a source tree, not at everything under a home directory.
const (
	maxDepth = 8
	maxFiles = 20_000
	maxRead  = 1 << 20 // larger files are not manifests or Dockerfiles
)

// Detect looks through dir and proposes a hotpod.yaml.
func Detect(dir string) (Project, []Finding, error) {
	d := &detector{root: dir, module: readModule(dir)}
	// skaffold.yaml first: its artifacts say which context each Dockerfile builds in.
	for _, name := range []string{"skaffold.yaml", "skaffold.yml"} {
		if p := filepath.Join(dir, name); exists(p) {
			if err := d.readSkaffold(p, name); err != nil {
				return Project{}, nil, err
			}
		}
	}
	if err := d.walk(); err != nil {
		return Project{}, nil, err
	}
	d.decide()
	return d.project, d.findings, nil
}

// ErrExists is returned by Write when the directory already has a hotpod.yaml.
var ErrExists = errors.New(config.FileName + " already exists")

// Write writes p as dir/hotpod.yaml and returns its path. It never replaces an existing file.
func Write(dir string, p Project) (string, error) {
	dst := filepath.Join(dir, config.FileName)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s: %w: hotpod init never overwrites; edit it, or remove it and run hotpod init again", dst, ErrExists)
	}
	if err != nil {
		return "", err
	}
	if _, err := f.Write(p.YAML()); err != nil {
		f.Close()
		os.Remove(dst)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(dst)
		return "", err
	}
	return dst, nil
}

// YAML renders p as a commented hotpod.yaml.
func (p Project) YAML() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by hotpod init from what it found in this project. Every field: docs/config.md.\n")
	b.WriteString("# Lines marked CHECK are guesses.\n")
	if len(p.Services) == 0 {
		b.WriteString("# No service found. Name each image hotpod builds, as the manifests name it:\n")
		b.WriteString("# services:\n#   - image: ko://example.com/app/cmd/server\n")
		b.WriteString("#   - image: registry.example.com/team/legacy   # built elsewhere\n")
		b.WriteString("#     main: ./cmd/legacy\n#     binary: /usr/local/bin/legacy\n")
		b.WriteString("services: []\n")
	} else {
		b.WriteString("services:\n")
		for _, s := range p.Services {
			for _, n := range s.Notes {
				fmt.Fprintf(&b, "  # %s\n", n)
			}
			fmt.Fprintf(&b, "  - image: %s\n", q(s.Image))
			if s.Main != "" {
				fmt.Fprintf(&b, "    main: %s\n", q(s.Main))
			}
			if s.Binary != "" {
				fmt.Fprintf(&b, "    binary: %s\n", q(s.Binary))
			}
		}
	}
	m := p.Manifests
	if m.Note != "" {
		fmt.Fprintf(&b, "# %s\n", m.Note)
	}
	switch {
	case len(m.Files) > 0:
		b.WriteString("manifests:\n  files:\n")
		for _, f := range m.Files {
			fmt.Fprintf(&b, "    - %s\n", q(f))
		}
	case m.Kustomize != "":
		fmt.Fprintf(&b, "manifests:\n  kustomize: %s\n", q(m.Kustomize))
	case m.Helm != nil:
		h := m.Helm
		fmt.Fprintf(&b, "manifests:\n  helm:\n    chart: %s\n", q(h.Chart))
		if len(h.Values) > 0 {
			b.WriteString("    values:\n")
			for _, v := range h.Values {
				fmt.Fprintf(&b, "      - %s\n", q(v))
			}
		}
		if len(h.Set) > 0 {
			b.WriteString("    set:\n")
			keys := make([]string, 0, len(h.Set))
			for k := range h.Set {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v, _ := yaml.Marshal(h.Set[k])
				fmt.Fprintf(&b, "      %s: %s\n", q(k), strings.TrimSpace(string(v)))
			}
		}
		if h.Release != "" {
			fmt.Fprintf(&b, "    release: %s\n", q(h.Release))
		}
		if h.Namespace != "" {
			fmt.Fprintf(&b, "    namespace: %s\n", q(h.Namespace))
		}
	default:
		b.WriteString("# No manifests found: name them here (files: [k8s/], kustomize: DIR or helm: {chart: DIR}), or pass -f / -k.\n")
	}
	return b.Bytes()
}

// q quotes s as YAML needs it.
func q(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSpace(string(b))
}

// detector collects what the walk sees, then decide turns it into a Project.
type detector struct {
	root     string
	module   module
	files    int
	findings []Finding

	koRefs         map[string]string // import path → first file:line
	koOrder        []string
	images         map[string]string // other images in manifests, by repository → where
	manifestDirs   []string          // directories holding Kubernetes objects
	kustomizations []string
	charts         []chartInfo
	dockerfiles    []dockerService
	skaffold       *skaffoldInfo

	project Project
}

func (d *detector) find(file string, line int, guess bool, format string, args ...any) {
	d.findings = append(d.findings, Finding{File: file, Line: line, Message: fmt.Sprintf(format, args...), Guess: guess})
}

// skipDir reports whether the walk leaves a directory out: VCS and tool state, dependencies,
// test fixtures, and a chart's own subcharts.
func skipDir(rel, name string) bool {
	switch name {
	case "vendor", "node_modules", "testdata", "third_party":
		return true
	}
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return rel != "."
	}
	return false
}

func (d *detector) walk() error {
	return filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == d.root {
				return err
			}
			return nil // unreadable: not ours to judge
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if skipDir(rel, e.Name()) || strings.Count(rel, "/") >= maxDepth {
				return filepath.SkipDir
			}
			// A chart's charts/ holds its dependencies: part of that chart, not a project chart.
			if e.Name() == "charts" && exists(filepath.Join(filepath.Dir(p), "Chart.yaml")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.files++; d.files > maxFiles {
			return fmt.Errorf("%s has more than %d files: run hotpod init in the project's own directory", d.root, maxFiles)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		name := e.Name()
		switch {
		case isDockerfile(name):
			return d.dockerfile(p, rel)
		case (name == "skaffold.yaml" || name == "skaffold.yml") && rel != name:
			return d.readSkaffold(p, rel)
		case name == "Chart.yaml":
			return d.chart(p, rel)
		case name == "kustomization.yaml" || name == "kustomization.yml" || name == "Kustomization":
			d.kustomizations = append(d.kustomizations, path.Dir(rel))
			d.find(rel, 0, false, "a kustomization")
			return d.yamlFile(p, rel, false)
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			return d.yamlFile(p, rel, true)
		}
		return nil
	})
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func read(p string) ([]byte, bool) {
	fi, err := os.Stat(p)
	if err != nil || fi.Size() > maxRead {
		return nil, false
	}
	b, err := os.ReadFile(p)
	return b, err == nil
}

// module is the go.mod at the project's root, if any.
type module struct {
	path string // module path
}

func readModule(dir string) module {
	b, ok := read(filepath.Join(dir, "go.mod"))
	if !ok {
		return module{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok {
			return module{path: strings.Trim(strings.TrimSpace(strings.SplitN(rest, "//", 2)[0]), `"`)}
		}
	}
	return module{}
}

// importPath is the import path of the package in dir (slash-separated, relative to the
// project), or "" when the project has no go.mod.
func (m module) importPath(dir string) string {
	if m.path == "" {
		return ""
	}
	dir = path.Clean(dir)
	if dir == "." {
		return m.path
	}
	return m.path + "/" + dir
}

// relDir turns an import path of this module into a ./dir, or "" when it is not in it.
func (m module) relDir(importPath string) string {
	switch {
	case m.path == "":
		return ""
	case importPath == m.path:
		return "."
	case strings.HasPrefix(importPath, m.path+"/"):
		return "./" + strings.TrimPrefix(importPath, m.path+"/")
	}
	return ""
}

// isMain reports whether dir (relative to the project) holds a Go main package.
func (d *detector) isMain(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(dir)))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, ok := read(filepath.Join(d.root, filepath.FromSlash(dir), e.Name()))
		if !ok {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "package" {
				if f[1] == "main" {
					return true
				}
				break
			}
		}
	}
	return false
}

// dotSlash writes a project-relative directory as a main package path: ./dir.
func dotSlash(dir string) string {
	dir = path.Clean(dir)
	if dir == "." {
		return "."
	}
	return "./" + dir
}
