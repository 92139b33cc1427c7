package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
)

func runDeploy(ctx context.Context, env Env, args []string) error {
	var files, kustomizations repeated
	fs := newFlagSet(env, "deploy", "deploy -f MANIFESTS | -k KUSTOMIZATION [flags]\n\n"+
		"Applies the manifests once, as they are: every ko://<import path> image is built (an image\n"+
		"index when the nodes run several platforms), pushed and replaced by its digest reference;\n"+
		"the objects are applied with server-side apply (field manager hotpod) and their rollout\n"+
		"awaited. Nothing runs under the agent and nothing is deleted afterwards (kubectl delete -f).")
	fs.Var(&files, "f", "manifest file or directory (repeatable)")
	fs.Var(&kustomizations, "k", "kustomize directory (repeatable)")
	namespace := fs.String("n", "", "namespace (default: the kubeconfig context's)")
	kubeContext := fs.String("context", "", "kubeconfig context (default: the current one)")
	repo := fs.String("default-repo", defaultRepo(), "registry repository for built images (env HOTPOD_DEFAULT_REPO, then KO_DOCKER_REPO)")
	base := fs.String("base-image", "gcr.io/distroless/static:nonroot", "base image, or scratch for an empty one")
	timeout := fs.Duration("rollout-timeout", 5*time.Minute, "how long the rollout may take")
	opts := buildFlags(fs)
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("unexpected argument %q: the manifests say what to deploy (-f, -k)", pos[0])
	case len(files)+len(kustomizations) == 0:
		return errors.New("nothing to deploy: give manifests with -f k8s/ or -k overlay/")
	}
	objs, refs, err := readManifests(files, kustomizations)
	if err != nil {
		return err
	}
	if len(refs) > 0 && *repo == "" {
		return errors.New("no registry to push images to: set --default-repo, HOTPOD_DEFAULT_REPO or KO_DOCKER_REPO (the local test cluster's is 127.0.0.1:5000)")
	}
	k, err := kube.Load(ctx, *kubeContext)
	if err != nil {
		return err
	}
	targets, err := k.Resolve(ctx, objs, namespaces(*namespace, k))
	if err != nil {
		return err
	}
	images := map[string]string{}
	if len(refs) > 0 {
		platforms, err := k.Platforms(ctx)
		if err != nil {
			return err
		}
		b, done, err := imageBuilder(env, "hotpod-deploy", *base, *repo, *opts, platforms[0])
		if err != nil {
			return err
		}
		defer done()
		for _, ref := range refs {
			fmt.Fprintf(env.Stderr, "hotpod: building ko://%s for %v on %s\n", ref, platforms, *base)
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
	if err := k.Rollout(ctx, applied, kube.RolloutOptions{Timeout: *timeout, CrashFails: true,
		Progress: func(s string) { fmt.Fprintln(env.Stderr, "hotpod:", s) }}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "hotpod: deployed %d objects\n", len(applied))
	return nil
}
