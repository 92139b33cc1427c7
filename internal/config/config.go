// Package config reads hotpod.yaml, the project file: the services hotpod builds, the manifests
// it applies (files, kustomize or a Helm chart), port-forwards and the session's defaults.
//
// The file is found from a directory upwards, as the go command finds go.mod. Decoding is strict:
// an unknown field, a value of the wrong kind or a second document is an error that names the
// file and line ("hotpod.yaml:12: unknown field "sevices" (did you mean "services"?)"), and every
// error is one line that says what to change. Relative paths are resolved against the file's
// directory, so the file means the same from any working directory. docs/config.md documents
// every field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileName is the project file's name.
const FileName = "hotpod.yaml"

// ErrNotFound is returned by Locate and Find when no directory up from the start has a
// hotpod.yaml.
var ErrNotFound = errors.New("no " + FileName + " in this directory or any parent")

// maxSize bounds what Parse reads: a project file is a few kilobytes.
const maxSize = 1 << 20

// Config is a decoded, validated hotpod.yaml.
type Config struct {
	// Path is the file; Dir its directory, against which relative paths were resolved.
	Path string `yaml:"-" json:"-"`
	Dir  string `yaml:"-" json:"-"`

	Services []Service `yaml:"services" json:"services,omitempty"`
	// Build holds build settings every service inherits; a service's own settings win.
	Build       Build         `yaml:"build" json:"build,omitzero"`
	Manifests   Manifests     `yaml:"manifests" json:"manifests,omitzero"`
	PortForward []PortForward `yaml:"portForward" json:"portForward,omitempty"`
	Namespace   string        `yaml:"namespace" json:"namespace,omitempty"`
	Context     string        `yaml:"context" json:"context,omitempty"`
	DefaultRepo string        `yaml:"defaultRepo" json:"defaultRepo,omitempty"`
	BaseImage   string        `yaml:"baseImage" json:"baseImage,omitempty"`

	lines map[string]int // field path ("services[1].main") → line, for validation errors
}

// Service is one image hotpod builds. A ko:// image is built from its import path on the base
// image; any other image is built elsewhere (CI, a Dockerfile) and hotpod puts the locally built
// Main at Binary in it.
type Service struct {
	// Image is how the manifests name the image: ko://<import path>, or a repository that matches
	// any tag or digest of it (a tag or digest here narrows the match to that one).
	Image string `yaml:"image" json:"image"`
	// Name names the service in hotpod's output and its pushed image; the last element of the
	// main package's path by default.
	Name string `yaml:"name" json:"name,omitempty"`
	// Main is the main package to build: an import path, or a directory (resolved to an absolute
	// path here). Implied by a ko:// image.
	Main string `yaml:"main" json:"main,omitempty"`
	// Binary is where an image built elsewhere keeps the app's binary (an absolute path).
	Binary string `yaml:"binary" json:"binary,omitempty"`
	// BaseImage overrides the project's base image for this ko:// service.
	BaseImage string `yaml:"baseImage" json:"baseImage,omitempty"`
	Build     `yaml:",inline"`
	// Ready is the agent's readiness check (tcp:PORT or http://127.0.0.1:PORT/PATH); the
	// container's readinessProbe when empty.
	Ready string `yaml:"ready" json:"ready,omitempty"`
	// StopSignal asks the app to stop before a restart (TERM by default); Grace is how long it
	// may take before it is killed.
	StopSignal string   `yaml:"stopSignal" json:"stopSignal,omitempty"`
	Grace      Duration `yaml:"grace" json:"grace,omitzero"`
	// StopPolicy says how a restart stops the app (the agent's --stop-policy): fast (the
	// agent's default: the stop signal, SIGKILL after 100 ms), graceful (after grace) or kill.
	StopPolicy string `yaml:"stopPolicy" json:"stopPolicy,omitempty"`
}

// Ko reports whether the service's image is built by hotpod from its import path.
func (s *Service) Ko() bool { return strings.HasPrefix(s.Image, KoPrefix) }

// KoPrefix marks an image hotpod builds from a Go import path, as ko does.
const KoPrefix = "ko://"

// Manifests says where the Kubernetes objects come from: exactly one of Files, Kustomize and
// Helm, or none (then the command line must name them).
type Manifests struct {
	Files     List  `yaml:"files" json:"files,omitempty"`
	Kustomize List  `yaml:"kustomize" json:"kustomize,omitempty"`
	Helm      *Helm `yaml:"helm" json:"helm,omitempty"`
}

// Helm is a local chart rendered as `helm template` would, then applied by hotpod.
type Helm struct {
	Chart  string `yaml:"chart" json:"chart"`
	Values List   `yaml:"values" json:"values,omitempty"`
	// Set are values as `helm --set key=value` sets them (typed: 2 is a number, true a bool);
	// SetString as --set-string (always strings).
	Set       map[string]any    `yaml:"set" json:"set,omitempty"`
	SetString map[string]string `yaml:"setString" json:"setString,omitempty"`
	// Release is the release name (.Release.Name); the chart's name by default.
	Release string `yaml:"release" json:"release,omitempty"`
	// Namespace is .Release.Namespace; the session's namespace by default.
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	// NoHooks leaves the chart's install hooks out, as `helm install --no-hooks`.
	NoHooks bool `yaml:"noHooks" json:"noHooks,omitempty"`
	// SkipCRDs leaves out the CRDs in the chart's crds/ directory.
	SkipCRDs bool `yaml:"skipCRDs" json:"skipCRDs,omitempty"`
}

// Locate returns the path of the hotpod.yaml in dir or its nearest parent that has one.
func Locate(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, FileName)
		fi, err := os.Stat(p)
		switch {
		case err == nil && !fi.IsDir():
			return p, nil
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("%s: %w", p, err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", ErrNotFound
		}
		d = parent
	}
}

// Find locates and loads the hotpod.yaml that applies to dir (ErrNotFound when none does).
func Find(dir string) (*Config, error) {
	p, err := Locate(dir)
	if err != nil {
		return nil, err
	}
	return Load(p)
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(b, path)
}

// Parse decodes and validates data, the contents of the file at path (whose directory relative
// paths are resolved against, and which errors name).
func Parse(data []byte, path string) (*Config, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes: is this the right file?", path, maxSize)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty: hotpod init writes one for this project", path)
		}
		return nil, syntaxError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, syntaxError(path, err)
		}
		return nil, fmt.Errorf("%s:%d: a second YAML document: keep one document (remove the ---)", path, line)
	}
	c := &Config{Path: path, Dir: dir, lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, fmt.Errorf("%s: empty: hotpod init writes one for this project", path)
	}
	if err := strict(root, c, path); err != nil {
		return nil, err
	}
	if err := root.Decode(c); err != nil {
		return nil, c.decodeError(err)
	}
	c.inherit()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// line returns the line of the field at p ("services[1].main"), or of its nearest parent that
// was written.
func (c *Config) line(p string) int {
	for {
		if l, ok := c.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return c.lines[""]
		}
		p = p[:i]
	}
}

// errorf is a validation error at the field p.
func (c *Config) errorf(p, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if p != "" {
		msg = p + ": " + msg
	}
	if l := c.line(p); l > 0 {
		return fmt.Errorf("%s:%d: %s", c.Path, l, msg)
	}
	return fmt.Errorf("%s: %s", c.Path, msg)
}

// syntaxError turns yaml.v3's "yaml: line 3: ..." into "hotpod.yaml:3: ...".
func syntaxError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			return fmt.Errorf("%s:%s: %s", path, n, oneLine(tail))
		}
	}
	return fmt.Errorf("%s: %s", path, oneLine(msg))
}

// decodeError reports what the strict pass left to decoding: a field type's own check, whose
// "line N: ..." error gets the path of the field written on that line.
func (c *Config) decodeError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	rest, ok := strings.CutPrefix(err.Error(), "line ")
	n, msg, ok2 := strings.Cut(rest, ": ")
	line, err2 := strconv.Atoi(n)
	if !ok || !ok2 || err2 != nil {
		return syntaxError(c.Path, err)
	}
	field := ""
	for p, l := range c.lines {
		if l == line && (len(p) > len(field) || len(p) == len(field) && p < field) {
			field = p
		}
	}
	if field != "" {
		msg = field + ": " + msg
	}
	return fmt.Errorf("%s:%d: %s", c.Path, line, oneLine(msg))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
