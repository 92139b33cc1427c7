package cli

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/devloop"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/local"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/watch"
	"github.com/hotpod/hotpod/internal/workdir"
)

type devFlags struct {
	local        bool
	ready        string
	output       string
	ship         string
	build        *build.Options
	debounce     time.Duration
	readyTimeout time.Duration
	grace        time.Duration

	files          repeated
	kustomize      repeated
	namespace      string
	kubeContext    string
	repo           string
	baseImage      string
	keep           bool
	forwards       repeated
	rolloutTimeout time.Duration
}

func runDev(ctx context.Context, env Env, args []string) error {
	var f devFlags
	fs := newFlagSet(env, "dev", "dev -f MANIFESTS | -k KUSTOMIZATION [flags]\n       hotpod dev --local [flags] [PACKAGE] [-- APP ARGS...]\n\n"+
		"With -f: builds every ko://<import path> image of the manifests once (base + agent + app),\n"+
		"applies the manifests with the containers under the agent, and on every saved edit rebuilds\n"+
		"the binary and swaps it into every pod at once. Ctrl-C deletes what it applied.\n"+
		"With --local: runs PACKAGE (default \".\") as a local process under the agent.\n"+
		"Each iteration prints its phases and the edit→ready total.")
	fs.BoolVar(&f.local, "local", false, "run the app as a local process under the agent (no cluster)")
	fs.Var(&f.files, "f", "manifest file or directory (repeatable)")
	fs.Var(&f.kustomize, "k", "kustomize directory (repeatable)")
	fs.StringVar(&f.namespace, "n", "", "namespace (default: the kubeconfig context's)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVar(&f.repo, "default-repo", defaultRepo(), "registry repository for built images (env HOTPOD_DEFAULT_REPO, then KO_DOCKER_REPO)")
	fs.StringVar(&f.baseImage, "base-image", "gcr.io/distroless/static:nonroot", "base image, or scratch for an empty one")
	fs.BoolVar(&f.keep, "keep", false, "leave the applied objects in the cluster on exit")
	fs.Var(&f.forwards, "port-forward", "LOCAL:REMOTE: forward a local port to the session's pods, following replacements (repeatable)")
	fs.DurationVar(&f.rolloutTimeout, "rollout-timeout", 5*time.Minute, "how long the first rollout may take")
	fs.StringVar(&f.ready, "ready", "", "readiness check: tcp:PORT or http://127.0.0.1:PORT/PATH (default: ready once started)")
	fs.StringVar(&f.output, "output", "text", "text, or json: one JSON object per line")
	fs.StringVar(&f.ship, "ship", "auto", "how binaries travel: auto (fastest for the measured link), delta, full, raw")
	f.build = buildFlags(fs)
	fs.DurationVar(&f.debounce, "debounce", 30*time.Millisecond, "quiet time that ends a burst of file changes")
	fs.DurationVar(&f.readyTimeout, "ready-timeout", time.Minute, "how long the app may take to become ready")
	fs.DurationVar(&f.grace, "grace", 5*time.Second, "how long the app may take to stop before it is killed")
	pos, appArgs, err := parse(fs, args)
	if err != nil {
		return err
	}
	pkg, err := onePackage(fs, pos)
	if err != nil {
		return err
	}
	if f.output != "text" && f.output != "json" {
		return errors.New("--output " + f.output + ": want text or json")
	}
	method, err := ship.ParseMethod(f.ship)
	if err != nil {
		return err
	}
	switch {
	case f.local && len(f.files)+len(f.kustomize) > 0:
		return errors.New("--local and -f/-k exclude each other: --local runs the app here, -f and -k in the cluster")
	case f.local:
		return devLocal(ctx, env, f, pkg, appArgs, method)
	case len(f.files)+len(f.kustomize) == 0:
		return errors.New("nothing to run: give manifests with -f k8s/ or -k overlay/ (cluster), or --local")
	case len(pos) > 0 || len(appArgs) > 0:
		return errors.New("with -f the manifests say what runs: drop the PACKAGE and app arguments")
	}
	return devCluster(ctx, env, f, method)
}

func devLocal(ctx context.Context, env Env, f devFlags, pkg string, appArgs []string, method ship.Method) error {
	rep := report.New(env.Stdout, f.output == "json")
	logs := env.Stdout
	if rep.JSON() {
		logs = env.Stderr // keep stdout to the events
	}
	host := agentbin.Host()
	opts := *f.build
	opts.GOOS, opts.GOARCH = host.OS, host.Arch
	builder := &build.Builder{Dir: env.Dir, Package: pkg, Options: opts}
	m, err := gopkg.Load(ctx, env.Dir, pkg, builder.Env())
	if err != nil {
		return err
	}
	builder.Package = m.ImportPath
	cacheDir, err := agentbin.DefaultDir()
	if err != nil {
		return err
	}
	agentPath, err := (&agentbin.Cache{Dir: cacheDir}).Path(ctx, host)
	if err != nil {
		return err
	}
	work, err := workdir.New("hotpod-dev")
	if err != nil {
		return err
	}
	defer workdir.Remove(work) //nolint:errcheck // best effort

	loop := &devloop.Loop{Service: m.Name, Builder: builder, Shipper: ship.New(method), Report: rep,
		WorkDir: work, ReadyTimeout: f.readyTimeout,
		WatchSet: watchSetOf(env.Dir, pkg, builder)}
	var agent *local.Agent
	defer func() {
		if agent != nil {
			agent.Stop()
			rep.Infof(m.Name, "stopped the app and the agent; nothing left running")
		}
	}()
	prefixed := report.NewPrefixWriter(logs, m.Name)
	// Watch before the first build: an edit saved while it runs is the next iteration.
	w, err := watch.New(watchSet(m), f.debounce)
	if err != nil {
		return err
	}
	go w.Run(ctx)
	rep.Infof(m.Name, "building %s", m.ImportPath)
	target, err := loop.Start(ctx, func(ctx context.Context, path string) (*devloop.Target, error) {
		agent, err = local.Start(ctx, local.Options{Agent: agentPath, Binary: path, Name: m.Name, Args: appArgs,
			Ready: f.ready, Grace: f.grace, Output: prefixed})
		if err != nil {
			return nil, err
		}
		return &devloop.Target{Name: "local", Client: agent.Client}, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return firstBuildFailed(err)
	}
	loop.Targets = func() []*devloop.Target { return []*devloop.Target{target} }
	go loop.Follow(ctx, target)
	rep.Infof(m.Name, "watching %d package directories of %s: save a file to ship it, Ctrl-C to stop", len(m.Dirs), filepath.Base(m.ModuleDir))
	return loop.Run(ctx, w)
}

// watchSetOf recomputes what to watch for pkg after a build (new local imports, new embeds).
func watchSetOf(dir, pkg string, b *build.Builder) func(context.Context) (watch.Set, error) {
	return func(ctx context.Context) (watch.Set, error) {
		m, err := gopkg.Load(ctx, dir, pkg, b.Env())
		if err != nil {
			return watch.Set{}, err
		}
		return watchSet(m), nil
	}
}

func watchSet(m *gopkg.Main) watch.Set {
	files := append([]string{filepath.Join(m.ModuleDir, "go.mod"), filepath.Join(m.ModuleDir, "go.sum")}, m.EmbedFiles...)
	return watch.Set{Dirs: m.Dirs, Files: files}
}
