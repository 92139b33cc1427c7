package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// dockerStrategy is one of the original article's Dockerfile variants, where they still make
// sense. There is no container engine here, so the Dockerfile's build step runs on this machine
// the way `docker build` runs it: each edit copies the module into a fresh build context (COPY
// . .), and go build starts from an empty build cache, since the COPY invalidated every later
// layer. The image is then assembled, pushed and rolled out as in Image. Variant A (modules
// downloaded at every build) is left out: it measures the module proxy, and the shaped link has
// no way to it.
type dockerStrategy struct {
	clusterDefaults
	variant string // DockerVendor, DockerVendorW or DockerGocache
}

func (d dockerStrategy) Name() string { return d.variant }

func (d dockerStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	return c.measureImage(ctx, w, ns, func(work string) (*dockerContexts, error) {
		return newDockerContexts(ctx, d.variant, w.dir, work)
	})
}

// dockerContexts makes the build context of each edit for one variant.
type dockerContexts struct {
	variant string
	module  string // the workload's module, edits included
	vendor  string // vendor/ made once, copied into each context ("" without dependencies)
	warm    string // D: the build cache that the first build filled
	work    string
}

func newDockerContexts(ctx context.Context, variant, module, work string) (*dockerContexts, error) {
	d := &dockerContexts{variant: variant, module: module, work: work}
	tmpl := filepath.Join(work, "vendored")
	vendored, err := vendoredCopy(ctx, module, tmpl)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(module, "vendor")); vendored && err != nil {
		d.vendor = filepath.Join(tmpl, "vendor")
	}
	if variant == DockerGocache {
		d.warm = filepath.Join(work, "warm-gocache")
	}
	return d, nil
}

// next returns a fresh build context holding the module as it is now, and the environment and
// -ldflags its build uses. first says this is the build before the measured edits: for D it fills
// the cache that later contexts get a copy of.
func (d *dockerContexts) next(first bool) (dir string, env []string, ldflags string, err error) {
	dir, err = os.MkdirTemp(d.work, "context-")
	if err != nil {
		return "", nil, "", err
	}
	if err := os.CopyFS(dir, moduleFiles(d.module)); err != nil {
		return "", nil, "", fmt.Errorf("copy the build context: %w", err)
	}
	if d.vendor != "" {
		if err := os.CopyFS(filepath.Join(dir, "vendor"), os.DirFS(d.vendor)); err != nil {
			return "", nil, "", fmt.Errorf("copy vendor/: %w", err)
		}
	}
	cache := filepath.Join(dir, ".gocache")
	switch {
	case d.warm != "" && first:
		cache = d.warm
	case d.warm != "":
		if err := os.CopyFS(cache, os.DirFS(d.warm)); err != nil {
			return "", nil, "", fmt.Errorf("copy the build cache into the context: %w", err)
		}
	}
	// GOGC=100: the Dockerfile's go build runs with Go's defaults, not hotpod's build settings.
	env = []string{"GOCACHE=" + cache, "GOGC=100"}
	if _, err := os.Stat(filepath.Join(dir, "vendor")); err == nil {
		env = append(env, "GOFLAGS=-mod=vendor")
	}
	if d.variant == DockerVendorW {
		ldflags = "-w"
	}
	return dir, env, ldflags, nil
}
