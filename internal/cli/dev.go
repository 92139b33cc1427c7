package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/config"
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
	output       OutputFlags
	ship         string
	build        BuildFlags
	debounce     time.Duration
	readyTimeout time.Duration
	grace        time.Duration
	stopPolicy   string

	manifests      ManifestFlags
	kube           KubeFlags
	image          ImageFlags
	keep           bool
	forwards       []config.PortForward
	rolloutTimeout time.Duration

	debug     bool
	debugPort int
}

func newDevCommand(env *Env) *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev [-f MANIFESTS | -k KUSTOMIZATION | --helm CHART] | --local [PACKAGE] [-- APP ARGS...]",
		Short: "watch, build and hot-swap the app on every edit",
		Long: `In the cluster: builds every ko://<import path> image of the manifests once (base + agent +
app), and every image built elsewhere that a hotpod.yaml service claims (that image + agent + the
service's main built here at its binary); applies the manifests with those containers under the
agent, and on every saved edit rebuilds each affected service and swaps it into every pod at
once. Ctrl-C puts back what it changed. The manifests are -f, -k or --helm, else hotpod.yaml's
(found from the current directory upwards), whose settings fill in the flags not given.
With --local: runs PACKAGE (default ".") as a local process under the agent.
Each iteration prints its phases and the edit→ready total.`,
		Example: `  hotpod dev                       # the manifests and settings of hotpod.yaml
  hotpod dev -f k8s/ --default-repo 127.0.0.1:5000
  hotpod dev -k overlays/dev -n team-a --port-forward 8080:8080
  hotpod dev --helm charts/shop --set replicaCount=2 --port-forward 8080:deployment/api:8080
  hotpod dev --local ./cmd/api -- --listen :8080`,
		Args: maxArgs(1, "give at most one PACKAGE; the app's arguments go after --"),
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, appArgs := splitDash(cmd, args)
			method, err := ship.ParseMethod(f.ship)
			if err != nil {
				return usageError{err}
			}
			if f.debug {
				if f.local {
					return usageErrorf("--debug runs the app under Delve in the cluster's pods: use it with -f or -k (not --local)")
				}
				if f.debugPort < 1 || f.debugPort > 65535 {
					return usageErrorf("--debug-port %d: want a port number from 1 to 65535", f.debugPort)
				}
				if err := debugBuild(cmd, &f.build); err != nil {
					return usageError{err}
				}
			}
			switch {
			case f.local && !f.manifests.Empty():
				return usageErrorf("--local and -f/-k exclude each other: --local runs the app here, -f and -k in the cluster")
			case f.local:
				return devLocal(cmd.Context(), *env, f, onePackage(pos), appArgs, method)
			case cmd.Flags().Changed("stop-policy"):
				return usageErrorf("--stop-policy is for --local: in the cluster, set each service's stopPolicy in hotpod.yaml")
			}
			p, err := loadProject(*env, projectFlags{manifests: &f.manifests, kube: &f.kube, image: &f.image, build: &f.build,
				forwards: f.forwards, forwardsGiven: cmd.Flags().Changed("port-forward")})
			if err != nil {
				return err
			}
			if err := p.noManifests("run", ", or --local to run the app here"); err != nil {
				return err
			}
			if len(pos) > 0 || len(appArgs) > 0 {
				return usageErrorf("in the cluster the manifests say what runs: drop the PACKAGE and app arguments")
			}
			return devCluster(cmd.Context(), *env, f, p, method)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.BoolVar(&f.local, "local", false, "run the app as a local process under the agent (no cluster)")
	f.manifests.AddFlags(fs)
	f.kube.AddFlags(fs)
	f.image.AddFlags(fs)
	fs.BoolVar(&f.keep, "keep", false, "leave the applied objects in the cluster on exit")
	fs.Var(listOf(&f.forwards, "LOCAL:REMOTE", parseForward), "port-forward", "forward a local port to the session's pods (LOCAL:REMOTE) or to one workload's (LOCAL:KIND/NAME:REMOTE), following replacements (repeatable; replaces hotpod.yaml's portForward)")
	fs.BoolVar(&f.debug, "debug", false, "run one pod per service under Delve (built -N -l, without -trimpath) and serve it on --debug-port: breakpoints and connections survive every swap (docs/debugging.md)")
	fs.IntVar(&f.debugPort, "debug-port", 2345, "with --debug: the local port of the first service's debugger (JSON-RPC for dlv connect, and DAP); further services get the next ports")
	durationVar(fs, &f.rolloutTimeout, "rollout-timeout", 5*time.Minute, "how long the first rollout may take")
	fs.StringVar(&f.ready, "ready", "", "readiness check: tcp:PORT or http://127.0.0.1:PORT/PATH (default: ready once started)")
	f.output.AddFlags(fs)
	fs.Var(oneOf(&f.ship, string(ship.Auto), string(ship.Delta), string(ship.Full), string(ship.Raw)), "ship", "how binaries travel: auto (fastest for the measured link), delta, full, raw")
	f.build.AddFlags(fs)
	f.build.AddQuickFlag(fs)
	durationVar(fs, &f.debounce, "debounce", 30*time.Millisecond, "quiet time that ends a burst of file changes")
	durationVar(fs, &f.readyTimeout, "ready-timeout", time.Minute, "how long the app may take to become ready")
	durationVar(fs, &f.grace, "grace", 5*time.Second, "how long the app may take to stop before it is killed")
	fs.Var(oneOf(&f.stopPolicy, "fast", "graceful", "kill"), "stop-policy", "with --local: how a restart stops the app: fast (the stop signal, SIGKILL after 100 ms), graceful (after --grace), kill (in the cluster: hotpod.yaml's stopPolicy)")
	return cmd
}

func devLocal(ctx context.Context, env Env, f devFlags, pkg string, appArgs []string, method ship.Method) error {
	rep := report.New(env.Stdout, f.output.JSON())
	logs := env.Stdout
	if rep.JSON() {
		logs = env.Stderr // keep stdout to the events
	}
	host := agentbin.Host()
	opts := f.build.Options
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
	// A forced exit leaves the work directories (the agent follows hotpod down: Pdeathsig).
	defer env.Interrupt.Leave(fmt.Sprintf("work directories under %s (the next hotpod removes them)", workdir.Root()))()

	edits, closeEdits := editBuilder(builder)
	defer closeEdits()
	loop := &devloop.Loop{Service: m.Name, Builder: edits, Shipper: ship.New(method), Report: rep,
		WorkDir: work, ReadyTimeout: f.readyTimeout,
		WatchSet: watchSetOf(env.Dir, pkg, builder, false)}
	var agent *local.Agent
	defer func() {
		if agent != nil {
			agent.Stop()
			rep.Infof(m.Name, "stopped the app and the agent; nothing left running")
		}
	}()
	prefixed := report.NewPrefixWriter(logs, m.Name)
	// Locally the app reads kodata/ where it is: nothing to sync, nothing to watch there.
	var appEnv []string
	set := watchSet(m)
	if kodata, _ := m.KoData(); kodata != "" {
		appEnv, set.Trees = []string{"KO_DATA_PATH=" + kodata}, nil
	}
	// Watch before the first build: an edit saved while it runs is the next iteration.
	w, err := watch.New(set, f.debounce)
	if err != nil {
		return err
	}
	go w.Run(ctx)
	rep.Infof(m.Name, "building %s", m.ImportPath)
	target, err := loop.Start(ctx, func(ctx context.Context, path string) (*devloop.Target, error) {
		agent, err = local.Start(ctx, local.Options{Agent: agentPath, Binary: path, Name: m.Name, Args: appArgs,
			Ready: f.ready, Grace: f.grace, StopPolicy: f.stopPolicy, Output: prefixed, Env: appEnv})
		if err != nil {
			return nil, err
		}
		return &devloop.Target{Name: "local", Client: agent.Client}, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // interrupted before the app ran
		}
		return firstBuildFailed(err)
	}
	loop.Targets = func() []*devloop.Target { return []*devloop.Target{target} }
	go loop.Follow(ctx, target)
	rep.Infof(m.Name, "watching %d package directories of %s: save a file to ship it, Ctrl-C to stop", len(m.Dirs), filepath.Base(m.ModuleDir))
	return loop.Run(ctx, w)
}

// editBuilder is what builds a service's edits: b, or build.Quick around it when its options
// ask for it (--quick-build, hotpod.yaml's quickBuild). closeEdits removes Quick's work
// directory.
func editBuilder(b *build.Builder) (edits devloop.Builder, closeEdits func()) {
	if !b.Options.Quick {
		return b, func() {}
	}
	q := build.NewQuick(b)
	return q, func() { q.Close() }
}

// watchSetOf recomputes what to watch for pkg after a build (new local imports, new embeds);
// kodata/ is watched only when it is synced (kodata).
func watchSetOf(dir, pkg string, b *build.Builder, kodata bool) func(context.Context) (watch.Set, error) {
	return func(ctx context.Context) (watch.Set, error) {
		m, err := gopkg.Load(ctx, dir, pkg, b.Env())
		if err != nil {
			return watch.Set{}, err
		}
		set := watchSet(m)
		if !kodata {
			set.Trees = nil
		}
		return set, nil
	}
}

func watchSet(m *gopkg.Main) watch.Set {
	files := append([]string{filepath.Join(m.ModuleDir, "go.mod"), filepath.Join(m.ModuleDir, "go.sum")}, m.EmbedFiles...)
	set := watch.Set{Dirs: m.Dirs, Files: files}
	if kodata, _ := m.KoData(); kodata != "" {
		set.Trees = []string{kodata}
	}
	return set
}
