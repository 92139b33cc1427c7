package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
)

type deployFlags struct {
	manifests      ManifestFlags
	kube           KubeFlags
	image          ImageFlags
	build          BuildFlags
	rolloutTimeout time.Duration
}

func newDeployCommand(env *Env) *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "deploy -f MANIFESTS | -k KUSTOMIZATION",
		Short: "build the ko:// images of manifests and apply them once, without the agent",
		Long: `Applies the manifests once, as they are: every ko://<import path> image is built (an image
index when the nodes run several platforms), pushed and replaced by its digest reference; the
objects are applied with server-side apply (field manager hotpod) and their rollout awaited.
Nothing runs under the agent and nothing is deleted afterwards (kubectl delete -f).`,
		Example: `  hotpod deploy -f k8s/ -n staging --default-repo registry.example.com/me
  kustomize build overlays/prod | hotpod deploy -f -`,
		Args: maxArgs(0, "the manifests say what to deploy (-f, -k)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.manifests.Empty() {
				return usageErrorf("nothing to deploy: give manifests with -f k8s/ or -k overlay/")
			}
			return runDeploy(cmd.Context(), *env, f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	f.manifests.AddFlags(fs)
	f.kube.AddFlags(fs)
	f.image.AddFlags(fs)
	durationVar(fs, &f.rolloutTimeout, "rollout-timeout", 5*time.Minute, "how long the rollout may take")
	f.build.AddFlags(fs)
	return cmd
}

func runDeploy(ctx context.Context, env Env, f deployFlags) error {
	objs, refs, err := f.manifests.Read(env.Dir, env.Stdin)
	if err != nil {
		return err
	}
	if len(refs) > 0 && f.image.Repo == "" {
		return noRegistry(&env, "")
	}
	k, err := loadKube(ctx, &env, f.kube, func(s string) { fmt.Fprintln(env.Stderr, "hotpod:", s) })
	if err != nil {
		return err
	}
	targets, err := k.Resolve(ctx, objs, namespaces(f.kube, k))
	if err != nil {
		return err
	}
	images := map[string]string{}
	if len(refs) > 0 {
		platforms, err := k.Platforms(ctx)
		if err != nil {
			return err
		}
		b, done, err := imageBuilder(env, "hotpod-deploy", f.image.Base, f.image.Repo, f.build.Options, platforms[0])
		if err != nil {
			return err
		}
		defer done()
		for _, ref := range refs {
			fmt.Fprintf(env.Stderr, "hotpod: building ko://%s for %v on %s\n", ref, platforms, f.image.Base)
			built, err := buildFor(ctx, b, ref, platforms)
			if err != nil {
				return err
			}
			images[ref] = built
			fmt.Fprintf(env.Stderr, "hotpod: pushed %s\n", built)
		}
	}
	for _, t := range targets {
		if err := manifest.Resolve(t.Obj, images); err != nil {
			return err
		}
	}
	if err := k.Settle(ctx, targets); err != nil {
		return err
	}
	applied, err := k.Apply(ctx, targets)
	if err != nil {
		return err
	}
	for _, a := range applied {
		fmt.Fprintf(env.Stdout, "applied %s\n", a)
	}
	// Without the agent a crashing app stays down: say so at once, with its last lines.
	if err := k.Rollout(ctx, applied, kube.RolloutOptions{Timeout: f.rolloutTimeout, CrashFails: true,
		Progress: func(s string) { fmt.Fprintln(env.Stderr, "hotpod:", s) }}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "hotpod: deployed %d objects\n", len(applied))
	return nil
}
