package config

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// signals are the stop signals the agent knows (with or without SIG).
var signals = map[string]bool{"TERM": true, "INT": true, "QUIT": true, "HUP": true, "KILL": true, "USR1": true, "USR2": true}

// stopPolicies are the agent's --stop-policy values (agent.ParseStopPolicy).
var stopPolicies = map[string]bool{"fast": true, "graceful": true, "kill": true}

// releaseName is Helm's rule for release names.
var releaseName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validate checks what decoding cannot, resolves relative paths against c.Dir and fills
// defaults (service names).
func (c *Config) validate() error {
	names := map[string]string{}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if err := c.service(s, p); err != nil {
			return err
		}
		if other, dup := names[s.Name]; dup {
			return c.errorf(p, "a second service named %q (the first is %s): give one a name:", s.Name, other)
		}
		names[s.Name] = p
	}
	for i, s := range c.Services {
		for j := range i {
			if c.Services[j].matchesService(s) {
				return c.errorf(fmt.Sprintf("services[%d].image", i), "%s is already services[%d]: keep one", s.Image, j)
			}
		}
	}
	if err := c.manifests(); err != nil {
		return err
	}
	locals := map[int]int{}
	for i, f := range c.PortForward {
		if j, dup := locals[f.Local]; dup && f.Local != 0 {
			return c.errorf(fmt.Sprintf("portForward[%d]", i), "local port %d is already portForward[%d]: pick another", f.Local, j)
		}
		locals[f.Local] = i
	}
	if c.DefaultRepo != "" {
		if _, err := name.NewRepository(strings.TrimSuffix(c.DefaultRepo, "/")); err != nil {
			return c.errorf("defaultRepo", "%q is not a repository such as registry.example.com/team: %v", c.DefaultRepo, err)
		}
	}
	if c.BaseImage != "" && c.BaseImage != "scratch" {
		if _, err := name.ParseReference(c.BaseImage); err != nil {
			return c.errorf("baseImage", "%q is not an image reference (or scratch): %v", c.BaseImage, err)
		}
	}
	if c.Namespace != "" && !dns1123(c.Namespace, 63) {
		return c.errorf("namespace", "%q is not a namespace name (lower-case letters, digits and -)", c.Namespace)
	}
	return nil
}

func (c *Config) service(s *Service, p string) error {
	switch {
	case s.Image == "":
		return c.errorf(p, "no image: write how the manifests name it, ko://<import path> or a repository")
	case s.Ko():
		ip := strings.TrimPrefix(s.Image, KoPrefix)
		if ip == "" || strings.ContainsAny(ip, ":@ ") {
			return c.errorf(p+".image", "%q: want ko://<import path of a main package>, no tag or digest", s.Image)
		}
		if s.Main != "" {
			return c.errorf(p+".main", "a ko:// image builds its own import path: remove main, or name the image by its registry repository")
		}
		if s.Binary != "" {
			return c.errorf(p+".binary", "a ko:// image keeps its binary at /ko-app/<name>: remove binary")
		}
		s.Main = ip
	default:
		if _, err := name.ParseReference(s.Image); err != nil {
			return c.errorf(p+".image", "%q is not an image reference or ko://<import path>: %v", s.Image, err)
		}
		if s.Main == "" {
			return c.errorf(p, "image %s is built elsewhere: set main: to the Go main package to build for it (./cmd/x)", s.Image)
		}
		if s.Binary == "" {
			return c.errorf(p, "image %s is built elsewhere: set binary: to where that image keeps the app's binary (its Dockerfile's COPY destination)", s.Image)
		}
		if !path.IsAbs(s.Binary) || strings.HasSuffix(s.Binary, "/") {
			return c.errorf(p+".binary", "%q: want the absolute path of a file in the image, such as /usr/local/bin/app", s.Binary)
		}
		if s.BaseImage != "" {
			return c.errorf(p+".baseImage", "image %s is built elsewhere and is its own base: remove baseImage", s.Image)
		}
	}
	if isDirPath(s.Main) {
		d := c.abs(s.Main)
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return c.errorf(p+".main", "%s: no such directory (relative to %s): name the main package's directory", s.Main, c.Dir)
		}
		s.Main = d
	}
	if s.Name == "" {
		s.Name = path.Base(filepath.ToSlash(s.Main))
	}
	if !dns1123(s.Name, 63) {
		return c.errorf(p+".name", "%q: a service name is lower-case letters, digits and - (set name:)", s.Name)
	}
	if s.BaseImage != "" && s.BaseImage != "scratch" {
		if _, err := name.ParseReference(s.BaseImage); err != nil {
			return c.errorf(p+".baseImage", "%q is not an image reference (or scratch): %v", s.BaseImage, err)
		}
	}
	if s.Ready != "" && !validReady(s.Ready) {
		return c.errorf(p+".ready", "%q: want tcp:PORT or http://127.0.0.1:PORT/PATH", s.Ready)
	}
	if s.StopSignal != "" {
		sig := strings.TrimPrefix(strings.ToUpper(s.StopSignal), "SIG")
		if !signals[sig] {
			return c.errorf(p+".stopSignal", "%q: want TERM, INT, QUIT, HUP, USR1 or USR2", s.StopSignal)
		}
		s.StopSignal = sig
	}
	if s.StopPolicy != "" && !stopPolicies[s.StopPolicy] {
		return c.errorf(p+".stopPolicy", "%q: want fast (the stop signal, SIGKILL after 100 ms), graceful (SIGKILL after grace) or kill", s.StopPolicy)
	}
	if s.PostBuild != nil && len(*s.PostBuild) == 0 {
		return c.errorf(p+".postBuild", "empty: name a command, or remove postBuild")
	}
	return nil
}

func (c *Config) manifests() error {
	m := &c.Manifests
	n := 0
	if m.Files != nil {
		n++
	}
	if m.Kustomize != nil {
		n++
	}
	if m.Helm != nil {
		n++
	}
	if n > 1 {
		return c.errorf("manifests", "files, kustomize and helm are alternatives: keep one")
	}
	for i, f := range m.Files {
		if err := c.exists(fmt.Sprintf("manifests.files[%d]", i), &m.Files[i], f, false); err != nil {
			return err
		}
	}
	for i, k := range m.Kustomize {
		if err := c.exists(fmt.Sprintf("manifests.kustomize[%d]", i), &m.Kustomize[i], k, true); err != nil {
			return err
		}
	}
	if m.Files != nil && len(m.Files) == 0 || m.Kustomize != nil && len(m.Kustomize) == 0 {
		return c.errorf("manifests", "an empty list: name the manifests, or remove manifests")
	}
	if h := m.Helm; h != nil {
		if h.Chart == "" {
			return c.errorf("manifests.helm", "no chart: name the chart's directory (the one with Chart.yaml)")
		}
		if err := c.exists("manifests.helm.chart", &h.Chart, h.Chart, true); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(h.Chart, "Chart.yaml")); err != nil {
			return c.errorf("manifests.helm.chart", "%s has no Chart.yaml: name a chart's directory (charts from repositories: helm pull --untar first)", h.Chart)
		}
		for i, v := range h.Values {
			if err := c.exists(fmt.Sprintf("manifests.helm.values[%d]", i), &h.Values[i], v, false); err != nil {
				return err
			}
		}
		for k, v := range h.Set {
			switch v.(type) {
			case map[string]any, []any:
				return c.errorf("manifests.helm.set."+k, "want a single value (a list is {a,b} as with --set); put maps and lists in a values file")
			}
		}
		if h.Release != "" && (len(h.Release) > 53 || !releaseName.MatchString(h.Release)) {
			return c.errorf("manifests.helm.release", "%q: a release name is at most 53 characters among lower-case letters, digits, - and dots", h.Release)
		}
		if h.Namespace != "" && !dns1123(h.Namespace, 63) {
			return c.errorf("manifests.helm.namespace", "%q is not a namespace name (lower-case letters, digits and -)", h.Namespace)
		}
	}
	return nil
}

// exists resolves *dst (the written value v) against c.Dir and checks it is there.
func (c *Config) exists(p string, dst *string, v string, dir bool) error {
	if v == "" {
		return c.errorf(p, "empty: name a path relative to %s", c.Dir)
	}
	abs := c.abs(v)
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		return c.errorf(p, "%s: no such file or directory (relative to %s)", v, c.Dir)
	case dir && !fi.IsDir():
		return c.errorf(p, "%s is a file: name its directory", v)
	}
	*dst = abs
	return nil
}

func (c *Config) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, filepath.FromSlash(p))
}

// isDirPath reports whether a main package is written as a directory rather than an import path.
func isDirPath(p string) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || filepath.IsAbs(p)
}

func validReady(s string) bool {
	if port, ok := strings.CutPrefix(s, "tcp:"); ok {
		n, err := strconv.Atoi(port)
		return err == nil && n > 0 && n < 65536
	}
	return strings.HasPrefix(s, "http://")
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func dns1123(s string, max int) bool { return len(s) <= max && dnsLabel.MatchString(s) }
