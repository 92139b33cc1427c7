package config

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Service returns the service whose image the manifests' image matches, or nil.
func (c *Config) Service(image string) *Service {
	for i := range c.Services {
		if c.Services[i].Matches(image) {
			return &c.Services[i]
		}
	}
	return nil
}

// Matches reports whether a container's image (as a manifest names it) is this service's:
// ko:// images by import path; others by repository, any tag or digest unless the service's
// image names one. Docker Hub's short names match their long form (nginx = docker.io/library/nginx).
func (s *Service) Matches(image string) bool {
	if s.Ko() || strings.HasPrefix(image, KoPrefix) {
		return s.Image == image
	}
	want, err := name.ParseReference(s.Image)
	if err != nil {
		return false
	}
	got, err := name.ParseReference(image)
	if err != nil || got.Context().Name() != want.Context().Name() {
		return false
	}
	switch w := want.(type) {
	case name.Digest:
		return got.Identifier() == w.DigestStr()
	case name.Tag:
		// name.ParseReference fills in "latest" for a bare repository; only an explicit tag narrows.
		if !hasTag(s.Image) {
			return true
		}
		return got.Identifier() == w.TagStr()
	}
	return true
}

// matchesService reports whether two services claim the same images.
func (s *Service) matchesService(o Service) bool {
	return s.Matches(o.Image) || o.Matches(s.Image)
}

// hasTag reports whether a reference names a tag (a ':' after its last '/').
func hasTag(ref string) bool {
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":") && !strings.Contains(ref, "@")
}
