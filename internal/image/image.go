// Package image assembles container images the way ko does: a base image plus layers of files
// (the agent, the app binary), with go-containerregistry; pure transformations, with the registry
// I/O in Base and Push.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer. A Path ending in "/" is a directory.
type File struct {
	Path     string
	Mode     int64
	UID, GID int
	Data     []byte
}

// Layer packs files into an uncompressed-tar layer (compressed by go-containerregistry on push).
// Timestamps are fixed so the same files give the same digest.
func Layer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: f.Mode, Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(f.Path, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Config is what Append sets in the image config; empty fields keep the base's.
type Config struct {
	Platform   v1.Platform
	Entrypoint []string
	Env        []string // added to the base's
	// PathAppend is appended to the base's PATH (which it becomes when the base has none), as ko
	// appends /ko-app.
	PathAppend string
	User       string
	WorkingDir string
}

// Append adds layers on top of base and sets c.
func Append(base v1.Image, c Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	if c.Platform.OS != "" {
		cf.OS, cf.Architecture, cf.Variant = c.Platform.OS, c.Platform.Architecture, c.Platform.Variant
	}
	if c.Entrypoint != nil {
		cf.Config.Entrypoint, cf.Config.Cmd = c.Entrypoint, nil
	}
	if c.PathAppend != "" {
		cf.Config.Env = appendPath(cf.Config.Env, c.PathAppend)
	}
	cf.Config.Env = append(cf.Config.Env, c.Env...)
	if c.User != "" {
		cf.Config.User = c.User
	}
	if c.WorkingDir != "" {
		cf.Config.WorkingDir = c.WorkingDir
	}
	return mutate.ConfigFile(img, cf)
}

// appendPath appends dir to the PATH in env, or adds PATH=dir when env has none.
func appendPath(env []string, dir string) []string {
	for i, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			env[i] = "PATH=" + v + ":" + dir
			if v == "" {
				env[i] = "PATH=" + dir
			}
			return env
		}
	}
	return append(env, "PATH="+dir)
}

// EnvValue returns the value of key in a config's KEY=VALUE environment.
func EnvValue(env []string, key string) (string, bool) {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Scratch is the empty base image, with a PATH so exec into it finds programs.
func Scratch(p v1.Platform) (v1.Image, error) {
	return Append(empty.Image, Config{Platform: p, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}})
}

// Base fetches ref for platform p; "scratch" is the empty image.
func Base(ctx context.Context, ref string, p v1.Platform) (v1.Image, error) {
	if ref == "scratch" {
		return Scratch(p)
	}
	img, err := Pull(ctx, ref, p)
	if err != nil {
		return nil, fmt.Errorf("base image: %w; or pick one this machine can pull with --base-image: scratch (an empty image: enough for a static Go binary), or one in a registry you reach, such as a copy pushed to your --default-repo", err)
	}
	return img, nil
}

// Pull fetches ref from its registry: the image for platform p when ref is an index, else the
// image itself, which must then be for p. Credentials come from the Docker config
// (~/.docker/config.json and its helpers), as docker and ko find them. Its errors are one line
// that names the image and what to do.
func Pull(ctx context.Context, ref string, p v1.Platform) (v1.Image, error) {
	r, err := name.ParseReference(ref, options(ref)...)
	if err != nil {
		return nil, fmt.Errorf("image %q is not a valid reference: %v", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(p), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, pullError(r, p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, pullError(r, p, err)
	}
	if cf.Architecture != "" && (cf.OS != p.OS || cf.Architecture != p.Architecture) {
		return nil, fmt.Errorf("image %s is for %s/%s, the nodes run %s/%s: build it for that platform too (docker buildx build --platform %s/%s)",
			ref, cf.OS, cf.Architecture, p.OS, p.Architecture, p.OS, p.Architecture)
	}
	return img, nil
}

// pullError says in one line why ref could not be pulled and what fixes it.
func pullError(r name.Reference, p v1.Platform, err error) error {
	reg := r.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("cannot pull %s: %s refused access: log in with docker login %s (hotpod uses your Docker credentials)", r, reg, reg)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			return fmt.Errorf("cannot pull %s: %s has no such image: push it there first (your CI, or docker push), or fix the image in the manifest", r, reg)
		}
	}
	if strings.Contains(err.Error(), "no child with platform") {
		return fmt.Errorf("cannot pull %s: it has no image for %s: build it for the nodes' platform too", r, p)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot pull %s: registry %s does not answer (%s): check the image's registry name and that the registry runs and is reachable", r, reg, oneLine(err.Error()))
	}
	return fmt.Errorf("cannot pull %s: %s", r, oneLine(err.Error()))
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Push writes img to repo (tagged tag) and returns its digest reference.
func Push(ctx context.Context, img v1.Image, repo, tag string, opts ...PushOption) (name.Digest, error) {
	return push(ctx, repo, tag, img.Digest, func(t name.Tag) error {
		progress, stop := pushOpts(opts).watch(layerCount(img))
		defer stop()
		return remote.Write(t, img, append(progress, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))...)
	})
}

// PushIndex writes a multi-platform index to repo (tagged tag) and returns its digest reference.
func PushIndex(ctx context.Context, idx v1.ImageIndex, repo, tag string, opts ...PushOption) (name.Digest, error) {
	return push(ctx, repo, tag, idx.Digest, func(t name.Tag) error {
		progress, stop := pushOpts(opts).watch(indexLayerCount(idx))
		defer stop()
		return remote.WriteIndex(t, idx, append(progress, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))...)
	})
}

func push(ctx context.Context, repo, tag string, digest func() (v1.Hash, error), write func(name.Tag) error) (name.Digest, error) {
	t, err := name.NewTag(repo+":"+tag, options(repo)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image name %s:%s: %w", repo, tag, err)
	}
	if err := write(t); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w (is the registry running and reachable?)", t, err)
	}
	d, err := digest()
	if err != nil {
		return name.Digest{}, err
	}
	return t.Context().Digest(d.String()), nil
}

// options allows plain HTTP for registries on loopback and local names, as a developer's local
// registry is.
func options(ref string) []name.Option {
	host := strings.SplitN(ref, "/", 2)[0]
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if ip := net.ParseIP(h); (ip != nil && (ip.IsLoopback() || ip.IsPrivate())) || h == "localhost" || strings.HasSuffix(h, ".local") {
		return []name.Option{name.Insecure}
	}
	return nil
}
