// Package appimage builds the image hotpod deploys for a main package, ko-style: the base image,
// a layer with the agent at /hotpod/agent, and a layer with the app at /ko-app/<name> (the image's
// entrypoint, so the image also runs without hotpod).
package appimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/image"
	"github.com/hotpod/hotpod/internal/manifest"
)

// Builder holds the settings shared by every image of a session.
type Builder struct {
	Dir      string // where the go command runs (the user's module)
	Base     string // "scratch" or an image reference
	Repo     string // images go to <Repo>/<name>
	Agents   *agentbin.Cache
	Options  build.Options // the user's build flags; GOOS/GOARCH are set per platform
	Platform v1.Platform
	WorkDir  string
}

// Result is one built and pushed image.
type Result struct {
	Built   manifest.Built
	Main    *gopkg.Main
	Binary  []byte // the app binary inside the image: the base of the first delta
	Builder *build.Builder
	// AppLayerBytes is the compressed size of the app's layer: what a push sends per edit.
	AppLayerBytes int64
}

// Build compiles importPath for b.Platform, assembles the image and pushes it.
func (b *Builder) Build(ctx context.Context, importPath string) (Result, error) {
	img, res, err := b.image(ctx, importPath, b.Platform)
	if err != nil {
		return Result{}, err
	}
	ref, err := image.Push(ctx, img, b.repo(res.Main.Name), "hotpod")
	if err != nil {
		return Result{}, err
	}
	res.Built.Ref = ref.String()
	return res, nil
}

// BuildIndex builds importPath for every platform and pushes them as one image index, for a
// cluster whose nodes differ.
func (b *Builder) BuildIndex(ctx context.Context, importPath string, platforms []v1.Platform) (string, error) {
	var adds []mutate.IndexAddendum
	name := ""
	for _, p := range platforms {
		img, res, err := b.image(ctx, importPath, p)
		if err != nil {
			return "", err
		}
		name = res.Main.Name
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, err := image.PushIndex(ctx, idx, b.repo(name), "hotpod")
	if err != nil {
		return "", err
	}
	return ref.String(), nil
}

func (b *Builder) repo(name string) string { return strings.TrimSuffix(b.Repo, "/") + "/" + name }

// image compiles importPath for p and assembles (but does not push) its image.
func (b *Builder) image(ctx context.Context, importPath string, p v1.Platform) (v1.Image, Result, error) {
	bld := &build.Builder{Dir: b.Dir, Package: importPath, Options: b.Options}
	bld.Options.GOOS, bld.Options.GOARCH = p.OS, p.Architecture
	m, err := gopkg.Load(ctx, b.Dir, importPath, bld.Env())
	if err != nil {
		return nil, Result{}, fmt.Errorf("ko://%s: %w", importPath, err)
	}
	out := filepath.Join(b.WorkDir, m.Name+".image")
	if _, err := bld.Build(ctx, out); err != nil {
		return nil, Result{}, err
	}
	bin, err := os.ReadFile(out)
	os.Remove(out)
	if err != nil {
		return nil, Result{}, err
	}
	agentPath, err := b.Agents.Path(ctx, agentbin.Platform{OS: p.OS, Arch: p.Architecture})
	if err != nil {
		return nil, Result{}, err
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return nil, Result{}, err
	}
	base, err := image.Base(ctx, b.Base, p)
	if err != nil {
		return nil, Result{}, err
	}
	agentLayer, err := image.Layer([]image.File{{Path: "hotpod/", Mode: 0o755}, {Path: strings.TrimPrefix(manifest.AgentPath, "/"), Mode: 0o755, Data: agent}})
	if err != nil {
		return nil, Result{}, err
	}
	inImage := manifest.KoAppDir + "/" + m.Name
	appLayer, err := image.Layer([]image.File{{Path: "ko-app/", Mode: 0o755}, {Path: inImage, Mode: 0o755, Data: bin}})
	if err != nil {
		return nil, Result{}, err
	}
	img, err := image.Append(base, image.Config{Platform: p, Entrypoint: []string{inImage}}, agentLayer, appLayer)
	if err != nil {
		return nil, Result{}, err
	}
	size, err := appLayer.Size()
	if err != nil {
		return nil, Result{}, err
	}
	return img, Result{Built: manifest.Built{Name: m.Name}, Main: m, Binary: bin, Builder: bld, AppLayerBytes: size}, nil
}
