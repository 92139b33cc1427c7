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
}

// Build compiles importPath for b.Platform, assembles the image and pushes it.
func (b *Builder) Build(ctx context.Context, importPath string) (Result, error) {
	bld := &build.Builder{Dir: b.Dir, Package: importPath, Options: b.Options}
	bld.Options.GOOS, bld.Options.GOARCH = b.Platform.OS, b.Platform.Architecture
	m, err := gopkg.Load(ctx, b.Dir, importPath, bld.Env())
	if err != nil {
		return Result{}, fmt.Errorf("ko://%s: %w", importPath, err)
	}
	out := filepath.Join(b.WorkDir, m.Name+".image")
	if _, err := bld.Build(ctx, out); err != nil {
		return Result{}, err
	}
	bin, err := os.ReadFile(out)
	os.Remove(out)
	if err != nil {
		return Result{}, err
	}
	agentPath, err := b.Agents.Path(ctx, agentbin.Platform{OS: b.Platform.OS, Arch: b.Platform.Architecture})
	if err != nil {
		return Result{}, err
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return Result{}, err
	}
	base, err := image.Base(ctx, b.Base, b.Platform)
	if err != nil {
		return Result{}, err
	}
	agentLayer, err := image.Layer([]image.File{{Path: "hotpod/", Mode: 0o755}, {Path: strings.TrimPrefix(manifest.AgentPath, "/"), Mode: 0o755, Data: agent}})
	if err != nil {
		return Result{}, err
	}
	inImage := manifest.KoAppDir + "/" + m.Name
	appLayer, err := image.Layer([]image.File{{Path: "ko-app/", Mode: 0o755}, {Path: inImage, Mode: 0o755, Data: bin}})
	if err != nil {
		return Result{}, err
	}
	img, err := image.Append(base, image.Config{Platform: b.Platform, Entrypoint: []string{inImage}}, agentLayer, appLayer)
	if err != nil {
		return Result{}, err
	}
	ref, err := image.Push(ctx, img, strings.TrimSuffix(b.Repo, "/")+"/"+m.Name, "hotpod")
	if err != nil {
		return Result{}, err
	}
	return Result{Built: manifest.Built{Ref: ref.String(), Name: m.Name}, Main: m, Binary: bin, Builder: bld}, nil
}
