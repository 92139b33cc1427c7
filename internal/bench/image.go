package bench

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/manifest"
)

// imageStrategy is the loop without hotpod: rebuild the image (hotpod's builder, ko's way), push
// it, server-side-apply the Deployment with the new digest, and poll the first Ready pod of that
// image.
type imageStrategy struct{ clusterDefaults }

func (imageStrategy) Name() string { return Image }

func (imageStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureImage(ctx, w, ns, nil)
}

// measureImage rebuilds the image, pushes it, rolls the Deployment, and waits for a pod of the
// new image to answer, for each edit. contexts, when not nil, makes the build context of each
// build from the work directory (the Dockerfile variants, docker.go); else every build runs in
// the workload's directory.
func (c Config) measureImage(ctx context.Context, w *workload, ns string, contexts func(work string) (*dockerContexts, error)) ([]sample, error) {
	platforms, err := c.Kube.Platforms(ctx)
	if err != nil {
		return nil, err
	}
	cacheDir, err := agentbin.DefaultDir()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "hotpod-bench-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	b := &appimage.Builder{Dir: w.dir, Base: c.Base, Repo: c.Repo, Agents: &agentbin.Cache{Dir: cacheDir},
		Options: build.Options{LDFlags: "-s -w"}, Platform: platforms[0], WorkDir: work}
	var dc *dockerContexts
	if contexts != nil {
		if dc, err = contexts(work); err != nil {
			return nil, err
		}
	}
	first := true
	deploy := func() (appimage.Result, error) {
		if dc != nil {
			dir, env, ldflags, err := dc.next(first)
			if err != nil {
				return appimage.Result{}, err
			}
			defer os.RemoveAll(dir)
			b.Dir, b.Options.Env, b.Options.LDFlags = dir, env, ldflags
		}
		first = false
		res, err := b.Build(ctx, w.importPath)
		if err != nil {
			return res, err
		}
		objs, err := manifest.Read(strings.NewReader(w.manifest(res.Built.Ref)), "bench")
		if err != nil {
			return res, err
		}
		_, err = c.Kube.ApplyObjects(ctx, ns, objs)
		return res, err
	}
	if _, err := deploy(); err != nil {
		return nil, err
	}
	var out []sample
	for i := 0; i <= c.Iterations; i++ {
		stamp, err := w.edit()
		if err != nil {
			return nil, err
		}
		res, err := deploy()
		if err != nil {
			return nil, err
		}
		pod, err := c.readyPod(ctx, ns, "app=bench-"+w.name, res.Built.Ref)
		if err != nil {
			return nil, err
		}
		at, err := c.answerThrough(ctx, ns, pod, stamp)
		if err != nil {
			return nil, err
		}
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp))), bytes: res.AppLayerBytes, appMS: c.appSays(ctx, ns, pod)}
		if i > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}
