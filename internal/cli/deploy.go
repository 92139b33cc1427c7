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
		Use:   "deploy [-f MANIFESTS | -k KUSTOMIZATION | --helm CHART]",
		Short: "build the images of manifests and apply them once, without the agent",
		Long: `Applies the manifests once, as they are: every ko://<import path> image is built (an image
index when the nodes run several platforms), and so is every image built elsewhere that a
hotpod.yaml service claims (that image with the service's main built here at its binary);
each is pushed and replaced by its digest reference. The objects are applied with server-side
apply (field manager hotpod) and their rollout awaited. Nothing runs under the agent and
nothing is deleted afterwards (kubectl delete -f). Without -f, -k or --helm, the manifests are
hotpod.yaml's (found from the current directory upwards).`,
		Example: `  hotpod deploy -f k8s/ -n staging --default-repo registry.example.com/me
  hotpod deploy --helm charts/shop --values charts/shop/values-staging.yaml
  kustomize build overlays/prod | hotpod deploy -f -`,
		Args: maxArgs(0, "the manifests say what to deploy (-f, -k)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadProject(*env, projectFlags{manifests: &f.manifests, kube: &f.kube, image: &f.image, build: &f.build})
			if err != nil {
				return err
			}
			if err := p.noManifests("deploy", ""); err != nil {
				return err
			}
			return runDeploy(cmd.Context(), *env, p, f)
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

func runDeploy(ctx context.Context, env Env, p *project, f deployFlags) error {
	say := func(format string, a ...any) { fmt.Fprintf(env.Stderr, "hotpod: "+format+"\n", a...) }
	if s := p.source(); s != "" {
		say("%s", s)
	}
	c, err := p.open(ctx, &env, say)
	if err != nil {
		return err
	}
	k, targets := c.k, c.targets
	// ko:// images and images built elsewhere alike: built from the sources here (the latter on
	// the image the manifests name, the binary swapped at its place), pushed, and named by digest.
	images := map[string]manifest.Built{}
	if len(c.images) > 0 {
		b, done, err := c.imageBuilder("hotpod-deploy", c.platforms[0])
		if err != nil {
			return err
		}
		defer done()
		err = c.buildRefs(ctx, b, c.platforms, say, func(t *toBuild, ref string) {
			images[t.key] = manifest.Built{Ref: ref}
			say("pushed %s", ref)
		})
		if err != nil {
			return err
		}
	}
	for _, t := range targets {
		// Without a session, Rewrite only replaces the images.
		if err := manifest.Rewrite(t.Obj, manifest.Dev{Images: images}); err != nil {
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
