package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/bench/link"
	"github.com/hotpod/hotpod/internal/bench/output"
	"github.com/hotpod/hotpod/internal/gopkg"
)

func newBenchCommand(env *Env) *cobra.Command {
	var (
		strategies             []string
		links                  []link.Link
		edits                  int
		quick                  bool
		jsonOut, mdOut, svgOut string
		image                  = ImageFlags{Base: "scratch"}
		kf                     KubeFlags
		inside                 string
	)
	cmd := &cobra.Command{
		Use:   "bench [WORKLOAD...]",
		Short: "measure edit→ready on the cluster: hotpod against rebuilding the image and the other ways",
		Long: `Reproduces the classic Go-on-Kubernetes edit-loop measurement on the current cluster. WORKLOAD is
hello, seedapp (badger + influxdb + a ~50 MB embedded blob), drainapp (gRPC + HTTP, ~400
packages, a 3 s drain on SIGTERM), drainapp30 (drainapp with a 14.4 MB embedded asset: a 30 MB
binary), kubeapp (drainapp with client-go: ~650 packages, a 42 MB binary), or a directory
with a main package that has a ` + "`time.Unix(0, N)`" + ` line and serves it on GET /called. Each
edit rewrites that line; edit→ready is the time until the new code answers through a
port-forward. The named ones are built into hotpod: they need no checkout.`,
		Example: `  hotpod bench --default-repo 127.0.0.1:5000/bench
  hotpod bench hello --strategy hotpod,image --link direct,20mbit:30ms --edits 10 --markdown out.md`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := bench.Config{Iterations: edits, Repo: image.Repo, Base: image.Base, Progress: env.Stderr,
				Strategies: strategies, Workloads: args, Links: links}
			if quick {
				c.Workloads, c.Strategies, c.Iterations = []string{"hello"}, []string{bench.Hotpod, bench.Image}, 1
				c.Links = []link.Link{{}}
			}
			if len(c.Workloads) == 0 {
				c.Workloads = []string{"hello", "seedapp"}
			}
			if inside != "" {
				l, err := link.Parse(inside)
				if err != nil {
					return usageError{err}
				}
				c.Links, c.Inside = []link.Link{l}, true
				if err := link.InsideRelay(ctx, bench.RegistryHost(c.Repo)); err != nil {
					return err
				}
			}
			if c.Iterations < 1 {
				return usageErrorf("--edits %d: want at least 1 edit", c.Iterations)
			}
			if c.Repo == "" {
				return noRegistry(env, "/bench")
			}
			var err error
			if c.Hotpod, err = os.Executable(); err != nil {
				return err
			}
			if c.RepoRoot, err = gopkg.ModuleRoot(ctx, env.Dir); err != nil {
				return err
			}
			if c.Kube, err = loadKube(ctx, env, kf, nil); err != nil {
				return err
			}
			records, err := bench.Run(ctx, c)
			output.Markdown(env.Stdout, records)
			if werr := writeOutputs(records, jsonOut, mdOut, svgOut); werr != nil && err == nil {
				err = werr
			}
			if err != nil {
				return err
			}
			if quick {
				return bench.Sane(records, c.Iterations)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.Var(listOf(&strategies, "strategy[,...]", parseStrategy).withDefault("local,hotpod,full,image"), "strategy",
		"strategies: gobuild (the floor users know: plain go build -o with the go command's defaults, the app killed and started again here, as air does; no hotpod, no cluster), local (hotpod's floor: hotpod dev --local, no cluster), hotpod (the default loop), quick (hotpod dev --quick-build: an edit built by re-running go build's own compile and link), full (hotpod shipping the whole compressed binary), upx (hotpod shipping the whole binary packed by upx -q -1; needs upx on PATH, hack/upx.sh), image (rebuild, push, roll the Deployment), incluster (sync the changed file into a container holding the sources and this machine's Go toolchain, compile there with 1 CPU, restart); the article's Dockerfile variants, each build in a fresh context with an empty build cache, then push and roll: docker-vendor (B: vendored modules), docker-vendor-w (C: B + -ldflags=-w), docker-gocache (D: B + a warm GOCACHE copied into the context)")
	fs.Var(listOf(&links, "link[,...]", link.Parse).withDefault("direct"), "link",
		"links, comma-separated: direct, or RATE:DELAY such as 20mbit:30ms (the CLI side runs in a network namespace behind a tc-shaped veth; needs root and the project's local cluster)")
	fs.IntVar(&edits, "edits", 5, "edits measured per combination, after one warm-up")
	fs.BoolVar(&quick, "quick", false, "CI mode: hello, hotpod and image, 1 edit; fails unless every strategy completes with sane numbers")
	fs.StringVar(&jsonOut, "json", "", "write the records as JSON to this file")
	fs.StringVar(&mdOut, "markdown", "", "write the table as markdown to this file (it always goes to stdout)")
	fs.StringVar(&svgOut, "svg", "", "write a bar chart as SVG to this file")
	image.AddFlags(fs)
	kf.addClusterFlags(fs)
	fs.StringVar(&inside, "inside-link", "", "internal: this process runs in the shaped link's network namespace")
	_ = fs.MarkHidden("inside-link")
	return cmd
}

func parseStrategy(s string) (string, error) {
	if _, err := bench.Lookup(s); err != nil {
		return "", fmt.Errorf("want one of %s", strings.Join(bench.Strategies(), ", "))
	}
	return s, nil
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
		write(jsonOut, func(f *os.File) error { return output.JSON(f, records) }),
		write(mdOut, func(f *os.File) error { output.Markdown(f, records); return nil }),
		write(svgOut, func(f *os.File) error { output.SVG(f, records); return nil }),
	)
}
