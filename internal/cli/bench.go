package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/kube"
)

func runBench(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "bench", "bench [flags] [WORKLOAD...]\n\n"+
		"Reproduces the classic Go-on-Kubernetes edit-loop measurement on the current cluster. WORKLOAD is\n"+
		"hello, seedapp (badger + influxdb + a ~50 MB embedded blob), or a directory with a main package\n"+
		"that has a `time.Unix(0, N)` line and serves it on GET /called. Each edit rewrites that line;\n"+
		"edit→ready is the time until the new code answers through a port-forward. Run it in a hotpod\n"+
		"checkout for the built-in workloads.")
	strategies := fs.String("strategy", "local,hotpod,full,image", "strategies: local (the floor: hotpod dev --local, no cluster), hotpod (the default loop), full (hotpod shipping the whole compressed binary), upx (hotpod shipping the whole binary packed by upx -q -1; needs upx on PATH, hack/upx.sh), image (rebuild, push, roll the Deployment), incluster (sync the changed file into a container holding the sources and this machine's Go toolchain, compile there with 1 CPU, restart); the article's Dockerfile variants, each build in a fresh context with an empty build cache, then push and roll: docker-vendor (B: vendored modules), docker-vendor-w (C: B + -ldflags=-w), docker-gocache (D: B + a warm GOCACHE copied into the context)")
	links := fs.String("link", "direct", "links, comma-separated: direct, or RATE:DELAY such as 20mbit:30ms (the CLI side runs in a network namespace behind a tc-shaped veth; needs root and the project's local cluster)")
	n := fs.Int("n", 5, "edits measured per combination, after one warm-up")
	quick := fs.Bool("quick", false, "CI mode: hello, hotpod and image, 1 edit; fails unless every strategy completes with sane numbers")
	jsonOut := fs.String("json", "", "write the records as JSON to this file")
	mdOut := fs.String("markdown", "", "write the table as markdown to this file (it always goes to stdout)")
	svgOut := fs.String("svg", "", "write a bar chart as SVG to this file")
	repo := fs.String("default-repo", defaultRepo(), "registry repository for the images (env HOTPOD_DEFAULT_REPO, then KO_DOCKER_REPO)")
	base := fs.String("base-image", "scratch", "base image")
	kubeContext := fs.String("context", "", "kubeconfig context")
	inside := fs.String("inside-link", "", "internal: this process runs in the shaped link's network namespace")
	pos, _, err := parse(fs, args)
	if err != nil {
		return err
	}
	c := bench.Config{Iterations: *n, Repo: *repo, Base: *base, Progress: env.Stderr,
		Strategies: splitList(*strategies), Workloads: pos}
	if *quick {
		c.Workloads, c.Strategies, c.Iterations = []string{"hello"}, []string{bench.Hotpod, bench.Image}, 1
		*links = "direct"
	}
	if len(c.Workloads) == 0 {
		c.Workloads = []string{"hello", "seedapp"}
	}
	for _, s := range c.Strategies {
		if !slices.Contains(bench.Strategies(), s) {
			return fmt.Errorf("--strategy %q: want one of %s", s, strings.Join(bench.Strategies(), ", "))
		}
	}
	for _, l := range splitList(*links) {
		link, err := bench.ParseLink(l)
		if err != nil {
			return err
		}
		c.Links = append(c.Links, link)
	}
	if *inside != "" {
		link, err := bench.ParseLink(*inside)
		if err != nil {
			return err
		}
		c.Links, c.Inside = []bench.Link{link}, true
		if err := bench.InsideRelay(ctx, strings.SplitN(c.Repo, "/", 2)[0]); err != nil {
			return err
		}
	}
	if c.Iterations < 1 {
		return errors.New("-n: want at least 1 edit")
	}
	if c.Repo == "" {
		return errors.New("no registry to push images to: set --default-repo, HOTPOD_DEFAULT_REPO or KO_DOCKER_REPO (the local test cluster's is 127.0.0.1:5000/bench)")
	}
	if c.Hotpod, err = os.Executable(); err != nil {
		return err
	}
	if c.RepoRoot, err = gopkg.ModuleRoot(ctx, env.Dir); err != nil {
		return err
	}
	if c.Kube, err = kube.Load(ctx, *kubeContext); err != nil {
		return err
	}
	records, err := bench.Run(ctx, c)
	bench.WriteMarkdown(env.Stdout, records)
	if werr := writeOutputs(records, *jsonOut, *mdOut, *svgOut); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if *quick {
		return bench.Sane(records, c.Iterations)
	}
	return nil
}

func writeOutputs(records []bench.Record, jsonOut, mdOut, svgOut string) error {
	write := func(path string, fn func(f *os.File) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return errors.Join(
		write(jsonOut, func(f *os.File) error { return bench.WriteJSON(f, records) }),
		write(mdOut, func(f *os.File) error { bench.WriteMarkdown(f, records); return nil }),
		write(svgOut, func(f *os.File) error { bench.WriteSVG(f, records); return nil }),
	)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
