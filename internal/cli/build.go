package cli

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/workdir"
)

func newBuildCommand(env *Env) *cobra.Command {
	var (
		image  ImageFlags
		kf     KubeFlags
		bflags BuildFlags
	)
	cmd := &cobra.Command{
		Use:   "build [PACKAGE]",
		Short: "build and push the image hotpod deploys for a main package",
		Long: `Builds the image hotpod deploys for PACKAGE (default "."): the base image, the agent at
/hotpod/agent and the app at /ko-app/<name> (its entrypoint), pushes it, and prints its digest
reference. The platform is read from the cluster's nodes (an image index when they differ)
unless --platform names it. With a hotpod.yaml, its defaultRepo, baseImage and context fill in
the flags not given, and a service whose main is PACKAGE gives its build settings; when that
service's image is built elsewhere, that image is pulled and gets the agent and the binary at
its binary: path instead.`,
		Example: `  hotpod build ./cmd/api --default-repo 127.0.0.1:5000
  hotpod build --platform linux/amd64,linux/arm64 --base-image scratch`,
		Args: maxArgs(1, "give at most one PACKAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := loadProject(*env, projectFlags{kube: &kf, image: &image, build: &bflags})
			if err != nil {
				return err
			}
			if p.repo == "" {
				return noRegistry(env, "")
			}
			platforms := image.Platforms
			if len(platforms) == 0 {
				k, err := loadKube(ctx, env, p.kube, nil)
				if err != nil {
					return fmt.Errorf("%w (or name the platform with --platform linux/amd64)", err)
				}
				if platforms, err = k.Platforms(ctx); err != nil {
					return err
				}
			}
			pkg := onePackage(args)
			spec := appimage.Service{Main: pkg, Base: p.base, Options: &bflags.Options}
			if p.cfg != nil {
				// A package of the project: its service's settings (and image, when built elsewhere).
				m, err := gopkg.Load(ctx, env.Dir, pkg, (&build.Builder{Options: bflags.Options}).Env())
				if err != nil {
					return err
				}
				spec, _ = p.serviceFor(m.ImportPath, m.Dir)
			}
			b, done, err := imageBuilder(*env, "hotpod-build", p.base, p.repo, bflags.Options, platforms[0])
			if err != nil {
				return err
			}
			if p.cfg != nil {
				b.Dir = p.dir
			}
			defer done()
			ref, err := buildFor(ctx, b, spec, platforms)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, ref)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	image.AddFlags(fs)
	image.AddPlatformFlag(fs)
	kf.addClusterFlags(fs)
	bflags.AddFlags(fs)
	return cmd
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
		Options: opts, Platform: p, WorkDir: work,
		// A first build (cold cache) and a first push (a big base, a slow link) take a while:
		// a line every few seconds says they move.
		Progress: func(s string) { fmt.Fprintln(env.Stderr, "hotpod:", s) }}
	left := env.Interrupt.Leave(fmt.Sprintf("work directories under %s (the next hotpod removes them)", workdir.Root()))
	return b, func() {
		workdir.Remove(work) //nolint:errcheck // best effort
		left()
	}, nil
}

// buildFor builds and pushes s's image for platforms: one image, or an index of several.
func buildFor(ctx context.Context, b *appimage.Builder, s appimage.Service, platforms []v1.Platform) (string, error) {
	if len(platforms) > 1 {
		return b.BuildServiceIndex(ctx, s, platforms)
	}
	res, err := b.BuildService(ctx, s)
	if err != nil {
		return "", firstBuildFailed(err)
	}
	return res.Built.Ref, nil
}
