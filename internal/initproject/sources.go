package initproject

import (
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	imageLine = regexp.MustCompile(`^\s*-?\s*(?:image|repository):\s*["']?([^\s"'#]+)`)
	templated = regexp.MustCompile(`\{\{`)
	workloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Pod": true, "Job": true, "CronJob": true, "ReplicaSet": true}
)

// yamlFile reads a YAML file: ko:// references and other images (line by line, so Helm values
// and templates count too), and whether it holds Kubernetes workloads (for files:).
func (d *detector) yamlFile(p, rel string, objects bool) error {
	b, ok := read(p)
	if !ok {
		return nil
	}
	for i, line := range strings.Split(string(b), "\n") {
		m := imageLine.FindStringSubmatch(line)
		if m == nil || templated.MatchString(m[1]) {
			continue
		}
		ref := m[1]
		if ip, ok := strings.CutPrefix(ref, "ko://"); ok && ip != "" {
			if d.koRefs == nil {
				d.koRefs = map[string]string{}
			}
			if _, seen := d.koRefs[ip]; !seen {
				d.koRefs[ip] = rel
				d.koOrder = append(d.koOrder, ip)
				d.find(rel, i+1, false, "ko:// image %s", ip)
			}
			continue
		}
		if d.images == nil {
			d.images = map[string]string{}
		}
		repo := repository(ref)
		if _, seen := d.images[repo]; !seen {
			d.images[repo] = rel
		}
	}
	if objects && !templated.Match(b) && hasWorkload(b) {
		dir := path.Dir(rel)
		if !slices.Contains(d.manifestDirs, dir) {
			d.manifestDirs = append(d.manifestDirs, dir)
			d.find(rel, 0, false, "Kubernetes workloads")
		}
	}
	return nil
}

// repository strips a reference's tag or digest.
func repository(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// hasWorkload reports whether the YAML documents in b include a workload kind with apiVersion.
func hasWorkload(b []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for range 100 {
		var doc struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) || err != nil && !isTypeError(err) {
			return false
		}
		if doc.APIVersion != "" && workloads[doc.Kind] {
			return true
		}
	}
	return false
}

func isTypeError(err error) bool {
	var te *yaml.TypeError
	return errors.As(err, &te)
}

type chartInfo struct {
	dir, name string
	values    []string // dev values files beside Chart.yaml
}

// devValues are the names of values files that look meant for development.
var devValues = []string{"values-dev.yaml", "values.dev.yaml", "dev-values.yaml", "values-local.yaml", "values.local.yaml"}

func (d *detector) chart(p, rel string) error {
	b, ok := read(p)
	if !ok {
		return nil
	}
	var c struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if yaml.Unmarshal(b, &c) != nil || c.Type == "library" {
		return nil
	}
	dir := path.Dir(rel)
	ci := chartInfo{dir: dir, name: c.Name}
	for _, v := range devValues {
		if exists(filepath.Join(d.root, filepath.FromSlash(dir), v)) {
			ci.values = append(ci.values, path.Join(dir, v))
		}
	}
	d.charts = append(d.charts, ci)
	d.find(rel, 0, false, "Helm chart %s", c.Name)
	return nil
}

// skaffoldInfo is what hotpod takes from skaffold.yaml.
type skaffoldInfo struct {
	file      string
	artifacts []skaffoldArtifact
	files     []string
	kustomize []string
	helm      []skaffoldRelease
}

type skaffoldArtifact struct {
	Image   string `yaml:"image"`
	Context string `yaml:"context"`
	Docker  *struct {
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"docker"`
	Ko *struct {
		Dir  string `yaml:"dir"`
		Main string `yaml:"main"`
	} `yaml:"ko"`
}

type skaffoldRelease struct {
	Name        string         `yaml:"name"`
	ChartPath   string         `yaml:"chartPath"`
	ValuesFiles []string       `yaml:"valuesFiles"`
	SetValues   map[string]any `yaml:"setValues"`
	Namespace   string         `yaml:"namespace"`
}

type skaffoldDeployers struct {
	Kubectl *struct {
		Manifests []string `yaml:"manifests"`
	} `yaml:"kubectl"`
	RawYaml   []string `yaml:"rawYaml"`
	Kustomize *struct {
		Paths []string `yaml:"paths"`
	} `yaml:"kustomize"`
	Helm *struct {
		Releases []skaffoldRelease `yaml:"releases"`
	} `yaml:"helm"`
}

// readSkaffold reads skaffold.yaml's artifacts and deployers (v1 to v4 schemas: deploy.kubectl,
// deploy.kustomize, deploy.helm, and v4's manifests section), from every document in the file.
func (d *detector) readSkaffold(p, rel string) error {
	b, ok := read(p)
	if !ok {
		return nil
	}
	if d.skaffold == nil {
		d.skaffold = &skaffoldInfo{file: rel}
	}
	s := d.skaffold
	base := path.Dir(rel)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for range 20 {
		var doc struct {
			Build struct {
				Artifacts []skaffoldArtifact `yaml:"artifacts"`
			} `yaml:"build"`
			Deploy    skaffoldDeployers `yaml:"deploy"`
			Manifests skaffoldDeployers `yaml:"manifests"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !isTypeError(err) {
			d.find(rel, 0, false, "not read: %v", err)
			return nil
		}
		for _, a := range doc.Build.Artifacts {
			a.Context = path.Join(base, a.Context)
			s.artifacts = append(s.artifacts, a)
		}
		for _, dep := range []skaffoldDeployers{doc.Deploy, doc.Manifests} {
			if dep.Kubectl != nil {
				s.files = append(s.files, d.globs(base, dep.Kubectl.Manifests)...)
			}
			s.files = append(s.files, d.globs(base, dep.RawYaml)...)
			if dep.Kustomize != nil {
				for _, k := range dep.Kustomize.Paths {
					s.kustomize = append(s.kustomize, path.Join(base, k))
				}
			}
			if dep.Helm != nil {
				for _, r := range dep.Helm.Releases {
					r.ChartPath = path.Join(base, r.ChartPath)
					for i, v := range r.ValuesFiles {
						r.ValuesFiles[i] = path.Join(base, v)
					}
					s.helm = append(s.helm, r)
				}
			}
		}
	}
	d.find(rel, 0, false, "skaffold config: %d artifacts, deployers: %s", len(s.artifacts), s.deployers())
	return nil
}

func (s *skaffoldInfo) deployers() string {
	var out []string
	if len(s.files) > 0 {
		out = append(out, "kubectl")
	}
	if len(s.kustomize) > 0 {
		out = append(out, "kustomize")
	}
	if len(s.helm) > 0 {
		out = append(out, "helm")
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// globs turns skaffold's manifest globs into what files: takes: k8s/*.yaml becomes its
// directory, other patterns the files they match.
func (d *detector) globs(base string, patterns []string) []string {
	var out []string
	for _, g := range patterns {
		g = path.Join(base, g)
		dir, file := path.Split(g)
		if (file == "*.yaml" || file == "*.yml" || file == "*") && !strings.ContainsAny(dir, "*?[") {
			out = append(out, path.Clean(dir))
			continue
		}
		if !strings.ContainsAny(g, "*?[") {
			out = append(out, g)
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(d.root, filepath.FromSlash(g)))
		for _, m := range matches {
			if r, err := filepath.Rel(d.root, m); err == nil {
				out = append(out, filepath.ToSlash(r))
			}
		}
	}
	return out
}
