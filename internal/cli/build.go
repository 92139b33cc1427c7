package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/workdir"
)

func runBuild(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "build", "build [flags] [PACKAGE]\n\n"+
		"Builds the image hotpod deploys for PACKAGE (default \".\"): the base image, the agent at\n"+
		"/hotpod/agent and the app at /ko-app/<name> (its entrypoint), pushes it, and prints its digest\n"+
		"reference. The platform is read from the cluster's nodes (an image index when they differ)\n"+
		"unless --platform names it.")
	repo := fs.String("default-repo", defaultRepo(), "registry repository (env HOTPOD_DEFAULT_REPO, then KO_DOCKER_REPO)")
	base := fs.String("base-image", "gcr.io/distroless/static:nonroot", "base image, or scratch for an empty one")
	platform := fs.String("platform", "", "os/arch[,os/arch...] (default: the cluster nodes')")
	kubeContext := fs.String("context", "", "kubeconfig context to read node platforms from")
	opts := buildFlags(fs)
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	pkg, err := onePackage(fs, pos)
	if err != nil {
		return err
	}
	if *repo == "" {
		return errors.New("no registry to push to: set --default-repo, HOTPOD_DEFAULT_REPO or KO_DOCKER_REPO")
	}
	platforms, err := parsePlatforms(*platform)
	if err != nil {
		return err
	}
	if len(platforms) == 0 {
		k, err := kube.Load(ctx, *kubeContext)
		if err != nil {
			return fmt.Errorf("%w (or name the platform with --platform linux/amd64)", err)
		}
		if platforms, err = k.Platforms(ctx); err != nil {
			return err
		}
	}
	b, done, err := imageBuilder(env, "hotpod-build", *base, *repo, *opts, platforms[0])
	if err != nil {
		return err
	}
	defer done()
	ref, err := buildFor(ctx, b, pkg, platforms)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, ref)
	return nil
}

// imageBuilder is a command's image builder for the module in env.Dir: the agent cache and a work
// directory, which done removes.
func imageBuilder(env Env, command, base, repo string, opts build.Options, p v1.Platform) (b *appimage.Builder, done func(), err error) {
	cacheDir, err := agentbin.DefaultDir()
	if err != nil {
		return nil, nil, err
	}
	work, err := workdir.New(command)
	if err != nil {
		return nil, nil, err
	}
	b = &appimage.Builder{Dir: env.Dir, Base: base, Repo: repo, Agents: &agentbin.Cache{Dir: cacheDir},
		Options: opts, Platform: p, WorkDir: work}
	return b, func() { workdir.Remove(work) }, nil //nolint:errcheck // best effort
}

// buildFor builds and pushes pkg's image for platforms: one image, or an index of several.
func buildFor(ctx context.Context, b *appimage.Builder, pkg string, platforms []v1.Platform) (string, error) {
	if len(platforms) > 1 {
		return b.BuildIndex(ctx, pkg, platforms)
	}
	res, err := b.Build(ctx, pkg)
	if err != nil {
		return "", firstBuildFailed(err)
	}
	return res.Built.Ref, nil
}

// parsePlatforms reads "linux/amd64,linux/arm64".
func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pl, err := v1.ParsePlatform(p)
		if err != nil || pl.OS == "" || pl.Architecture == "" {
			return nil, fmt.Errorf("--platform %q: want os/arch, e.g. linux/amd64", p)
		}
		out = append(out, *pl)
	}
	return out, nil
}
