// Package image assembles container images the way ko does: a base image plus layers of files
// (the agent, the app binary), with go-containerregistry; pure transformations, with the registry
// I/O in Base and Push.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	cf.Config.Env = append(cf.Config.Env, c.Env...)
	if c.User != "" {
		cf.Config.User = c.User
	}
	if c.WorkingDir != "" {
		cf.Config.WorkingDir = c.WorkingDir
	}
	return mutate.ConfigFile(img, cf)
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
	r, err := name.ParseReference(ref, options(ref)...)
	if err != nil {
		return nil, fmt.Errorf("base image %q: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithPlatform(p))
	if err != nil {
		return nil, fmt.Errorf("fetch base image %s: %w: pick one this machine can pull with --base-image: scratch (an empty image: enough for a static Go binary), or one in a registry you reach, such as a copy pushed to your --default-repo", ref, err)
	}
	return img, nil
}

// Push writes img to repo (tagged tag) and returns its digest reference.
func Push(ctx context.Context, img v1.Image, repo, tag string) (name.Digest, error) {
	return push(ctx, repo, tag, img.Digest, func(t name.Tag) error { return remote.Write(t, img, remote.WithContext(ctx)) })
}

// PushIndex writes a multi-platform index to repo (tagged tag) and returns its digest reference.
func PushIndex(ctx context.Context, idx v1.ImageIndex, repo, tag string) (name.Digest, error) {
	return push(ctx, repo, tag, idx.Digest, func(t name.Tag) error { return remote.WriteIndex(t, idx, remote.WithContext(ctx)) })
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
