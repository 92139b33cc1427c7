// Package appimage builds the images hotpod deploys, with no container engine:
//
//   - for a ko:// service, ko's way: the base image, a layer with the main package's kodata/
//     files at /var/run/ko (when it has that directory), a layer with the agent at /hotpod/agent
//     and a layer with the app at /ko-app/<name> (the image's entrypoint, so the image also runs
//     without hotpod); PATH gets /ko-app appended and KO_DATA_PATH=/var/run/ko is set, as ko
//     does;
//   - for an image built elsewhere (CI, a Dockerfile): that image pulled from its registry, with a
//     layer holding the agent and one holding the locally built binary at the path where the
//     image keeps its own. Everything else (files, shell, certificates, user, working directory,
//     environment, entrypoint) stays as it was.
//
// Either is pushed to the default repository by digest.
package appimage

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/image"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
)

// ko's conventions for where things live in its images.
const (
	KoDataPath = "/var/run/ko" // the kodata/ files; $KO_DATA_PATH
	KoDataEnv  = "KO_DATA_PATH"
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
	// Progress, when set, receives a line every few seconds while a build or a push lasts
	// (what, how long so far; a push's bytes and layers), and nothing for a shorter one.
	Progress func(string)
}

// progressEvery is how often a long build or push says how far it came.
const progressEvery = 3 * time.Second

// ticking reports what every progressEvery until the returned stop is called.
func (b *Builder) ticking(what string) (stop func()) {
	if b.Progress == nil {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.Progress(fmt.Sprintf("%s: %s", what, time.Since(start).Round(time.Second)))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// pushProgress is the push option that reports a push to repo on b.Progress.
func (b *Builder) pushProgress(repo string) []image.PushOption {
	if b.Progress == nil {
		return nil
	}
	return []image.PushOption{image.WithProgress(progressEvery, func(p image.Progress) {
		b.Progress(fmt.Sprintf("pushing %s: %s of %s, %d layers: %s", repo, report.Bytes(int(p.Complete)), report.Bytes(int(p.Total)),
			p.Layers, p.Elapsed.Round(time.Second)))
	})}
}

// Service says what to build.
type Service struct {
	// Main is the main package: an import path, or its directory (absolute, or ./relative to
	// Builder.Dir).
	Main string
	// Image, when set, is an image built elsewhere, as the manifest names it (repository with a
	// tag or digest): hotpod pulls it and puts the agent and the app into it. When empty, the
	// image is built ko's way on the base image.
	Image string
	// Binary is where Image keeps the app's binary (an absolute path). Required with Image.
	Binary string
	// Name is the pushed image's name under Builder.Repo: the main package's name for a ko
	// build, the last element of Image's repository otherwise.
	Name string
	// Base overrides Builder.Base for a ko build.
	Base string
	// Options overrides Builder.Options for this service (hotpod.yaml's per-service settings).
	Options *build.Options
}

// Result is one built and pushed image.
type Result struct {
	// Built.Ref is the pushed image by digest; Built.Name is the binary's file name (the last
	// element of BinaryPath).
	Built   manifest.Built
	Main    *gopkg.Main
	Binary  []byte // the app binary inside the image: the base of the first delta
	Builder *build.Builder
	// AppLayerBytes is the compressed size of the app's layer: what a push sends per edit.
	AppLayerBytes int64

	// BinaryPath is where the image keeps the app: /ko-app/<name>, or Service.Binary.
	BinaryPath string
	// Entrypoint and Cmd are the image's: what runs when a container names no command.
	Entrypoint, Cmd []string
	// Env is the image's environment (KEY=VALUE); PathEnv its PATH ("" when it has none), which
	// a container command without a slash is looked up in.
	Env     []string
	PathEnv string
	// User and WorkingDir are the image's.
	User, WorkingDir string
	// KoData is the main package's kodata directory on disk, whose files are at KoDataPath in
	// the image; "" when it has none (and for images built elsewhere, which bring their own files).
	KoData string
}

// Build compiles importPath for b.Platform, assembles its image ko's way and pushes it.
func (b *Builder) Build(ctx context.Context, importPath string) (Result, error) {
	return b.BuildService(ctx, Service{Main: importPath})
}

// BuildIndex builds importPath for every platform and pushes them as one image index, for a
// cluster whose nodes differ.
func (b *Builder) BuildIndex(ctx context.Context, importPath string, platforms []v1.Platform) (string, error) {
	return b.BuildServiceIndex(ctx, Service{Main: importPath}, platforms)
}

// BuildService compiles s for b.Platform, assembles its image (ko's way, or on the image built
// elsewhere) and pushes it.
func (b *Builder) BuildService(ctx context.Context, s Service) (Result, error) {
	img, res, err := b.image(ctx, s, b.Platform)
	if err != nil {
		return Result{}, err
	}
	repo := b.repo(b.imageName(s, res))
	ref, err := image.Push(ctx, img, repo, "hotpod", b.pushProgress(repo)...)
	if err != nil {
		return Result{}, err
	}
	res.Built.Ref = ref.String()
	return res, nil
}

// BuildServiceIndex builds s for every platform and pushes them as one image index.
func (b *Builder) BuildServiceIndex(ctx context.Context, s Service, platforms []v1.Platform) (string, error) {
	var adds []mutate.IndexAddendum
	imgName := ""
	for _, p := range platforms {
		img, res, err := b.image(ctx, s, p)
		if err != nil {
			return "", err
		}
		imgName = b.imageName(s, res)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, err := image.PushIndex(ctx, idx, b.repo(imgName), "hotpod", b.pushProgress(b.repo(imgName))...)
	if err != nil {
		return "", err
	}
	return ref.String(), nil
}

func (b *Builder) repo(name string) string { return strings.TrimSuffix(b.Repo, "/") + "/" + name }

func (b *Builder) imageName(s Service, res Result) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Image != "":
		if r, err := name.ParseReference(s.Image); err == nil {
			return path.Base(r.Context().RepositoryStr())
		}
	}
	return res.Main.Name
}

// image compiles s for p and assembles (but does not push) its image.
func (b *Builder) image(ctx context.Context, s Service, p v1.Platform) (v1.Image, Result, error) {
	if s.Image != "" && (!path.IsAbs(s.Binary) || strings.HasSuffix(s.Binary, "/")) {
		return nil, Result{}, fmt.Errorf("image %s: binary %q: want the absolute path where that image keeps the app's binary", s.Image, s.Binary)
	}
	opts := b.Options
	if s.Options != nil {
		opts = *s.Options
	}
	bld := &build.Builder{Dir: b.Dir, Package: s.Main, Options: opts}
	bld.Options.GOOS, bld.Options.GOARCH = p.OS, p.Architecture
	m, err := gopkg.Load(ctx, b.Dir, s.Main, bld.Env())
	if err != nil {
		if s.Image != "" {
			return nil, Result{}, fmt.Errorf("%s (main of %s): %w", s.Main, s.Image, err)
		}
		return nil, Result{}, fmt.Errorf("ko://%s: %w", s.Main, err)
	}
	// The base first: an image that cannot be pulled should fail before a build is paid for.
	var base v1.Image
	var binaryHdr *fileInfo
	if s.Image != "" {
		if base, err = image.Pull(ctx, s.Image, p); err != nil {
			return nil, Result{}, err
		}
		if binaryHdr, err = findFile(base, s.Binary); err != nil {
			return nil, Result{}, fmt.Errorf("image %s: %w", s.Image, err)
		}
	} else {
		ref := b.Base
		if s.Base != "" {
			ref = s.Base
		}
		if base, err = image.Base(ctx, ref, p); err != nil {
			return nil, Result{}, err
		}
	}
	// A directory of its own: services built at once may share a name (a/cmd/server, b/cmd/server).
	tmp, err := os.MkdirTemp(b.WorkDir, m.Name+"-")
	if err != nil {
		return nil, Result{}, err
	}
	out := filepath.Join(tmp, m.Name)
	stop := b.ticking(fmt.Sprintf("building %s for %s/%s", m.ImportPath, p.OS, p.Architecture))
	_, err = bld.Build(ctx, out)
	stop()
	var bin []byte
	if err == nil {
		bin, err = os.ReadFile(out)
	}
	os.RemoveAll(tmp)
	if err != nil {
		return nil, Result{}, err
	}
	stop = b.ticking(fmt.Sprintf("building the agent for %s/%s (once per hotpod version)", p.OS, p.Architecture))
	agentPath, err := b.Agents.Path(ctx, agentbin.Platform{OS: p.OS, Arch: p.Architecture})
	stop()
	if err != nil {
		return nil, Result{}, err
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return nil, Result{}, err
	}
	agentLayer, err := image.Layer([]image.File{{Path: "hotpod/", Mode: 0o755}, {Path: strings.TrimPrefix(manifest.AgentPath, "/"), Mode: 0o755, Data: agent}})
	if err != nil {
		return nil, Result{}, err
	}
	res := Result{Main: m, Binary: bin, Builder: bld}
	var img v1.Image
	var appLayer v1.Layer
	if s.Image != "" {
		res.BinaryPath = path.Clean(binaryHdr.path)
		// Only the file: a directory entry would replace its parent's owner and mode. The
		// binary keeps the owner and mode the image gave it.
		appLayer, err = image.Layer([]image.File{{Path: res.BinaryPath, Mode: binaryHdr.mode | 0o111, UID: binaryHdr.uid, GID: binaryHdr.gid, Data: bin}})
		if err != nil {
			return nil, Result{}, err
		}
		img, err = image.Append(base, image.Config{}, agentLayer, appLayer)
	} else {
		res.BinaryPath = manifest.KoAppDir + "/" + m.Name
		layers := []v1.Layer{}
		res.KoData, err = m.KoData()
		if err != nil {
			return nil, Result{}, err
		}
		if res.KoData != "" {
			files, err := kodataFiles(res.KoData, m.ModuleDir)
			if err != nil {
				return nil, Result{}, err
			}
			l, err := image.Layer(files)
			if err != nil {
				return nil, Result{}, err
			}
			layers = append(layers, l)
		}
		appLayer, err = image.Layer([]image.File{{Path: "ko-app/", Mode: 0o755}, {Path: res.BinaryPath, Mode: 0o755, Data: bin}})
		if err != nil {
			return nil, Result{}, err
		}
		layers = append(layers, agentLayer, appLayer)
		img, err = image.Append(base, image.Config{Platform: p, Entrypoint: []string{res.BinaryPath},
			PathAppend: manifest.KoAppDir, Env: []string{KoDataEnv + "=" + KoDataPath}}, layers...)
	}
	if err != nil {
		return nil, Result{}, err
	}
	if res.AppLayerBytes, err = appLayer.Size(); err != nil {
		return nil, Result{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, Result{}, err
	}
	c := cf.Config
	res.Entrypoint, res.Cmd, res.Env, res.User, res.WorkingDir = c.Entrypoint, c.Cmd, c.Env, c.User, c.WorkingDir
	res.PathEnv, _ = image.EnvValue(c.Env, "PATH")
	res.Built.Name = path.Base(res.BinaryPath)
	// What the dev-mode rewrite needs to know of the image.
	res.Built.Binary, res.Built.Entrypoint, res.Built.Cmd = res.BinaryPath, c.Entrypoint, c.Cmd
	res.Built.WorkingDir, res.Built.Path = c.WorkingDir, res.PathEnv
	if res.KoData != "" {
		res.Built.KoData = KoDataPath
	}
	return img, res, nil
}
