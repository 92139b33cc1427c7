// Package cli holds hotpod's commands: flags and wiring; the work is done in the other packages.
//
// The commands follow kubectl's conventions (cobra and pflag): the same flag means the same in
// every command (the flag groups of flags.go), help goes to stdout, a usage error is one line and
// exit code 2, an interrupted command says so and exits 130.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/kube"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin          io.Reader // manifests given as -f -
	Stdout, Stderr io.Writer
	Dir            string // the working directory
	// Interrupt is where a command registers what a forced exit (a second Ctrl-C) would leave
	// behind; nil registers nothing.
	Interrupt *Interrupt
}

// Exit codes.
const (
	exitError = 1
	exitUsage = 2
)

// usageError is a command line hotpod cannot run: an unknown flag or command, a bad flag value,
// flags that exclude each other. Nothing was done.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// errHelpShown ends a command whose help was printed as its answer to a wrong command line.
var errHelpShown = errors.New("help shown")

// Main runs the command named by args and returns the process exit code.
func Main(ctx context.Context, env Env, args []string) int {
	root := newRoot(&env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(ctx, env, cmd, err)
}

func exitCode(ctx context.Context, env Env, cmd *cobra.Command, err error) int {
	if err == nil {
		return 0
	}
	path := "hotpod"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var ue usageError
	switch {
	case interrupted(ctx):
		// What failed because of the interruption says "context canceled": not news.
		if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrInterrupted) && !strings.Contains(err.Error(), context.Canceled.Error()) {
			fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
		}
		fmt.Fprintf(env.Stderr, "%s: interrupted\n", path)
		return ExitInterrupted
	case errors.Is(err, errHelpShown):
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "%s: %v\nSee '%s --help'.\n", path, err, path)
		return exitUsage
	}
	fmt.Fprintf(env.Stderr, "%s: %v\n", path, err)
	return exitError
}

func newRoot(env *Env) *cobra.Command {
	var verbosity int
	root := &cobra.Command{
		Use:   "hotpod",
		Short: "the edit → running loop of a Go service on Kubernetes, as fast as local development",
		Long: `hotpod makes the edit → running loop of a Go service as fast as local development: it
watches the sources, builds the binary, ships only what changed into the running containers,
and restarts the process in place.`,
		Args: cobra.ArbitraryArgs, // unknown commands are reported by RunE, as usage errors
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(env.Stdout)
				_ = cmd.Help()
				return errHelpShown
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
			}
			return usageError{errors.New(msg)}
		},
		PersistentPreRun:           func(*cobra.Command, []string) { setVerbosity(env.Stderr, verbosity) },
		SilenceErrors:              true, // exitCode prints them
		SilenceUsage:               true, // a usage error is one line, not the whole help
		SuggestionsMinimumDistance: 2,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr) // cobra writes only errors there: help and usage go to stdout
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().IntVarP(&verbosity, "v", "v", 0, "log verbosity of the Kubernetes client on stderr, as kubectl -v (0: none)")
	root.AddCommand(newDevCommand(env), newStatusCommand(env), newBuildCommand(env), newDeployCommand(env), newInitCommand(env), newBenchCommand(env), newVersionCommand(env))
	return root
}

// flagError turns pflag's parse errors into usage errors: "--output "yaml": want text or json".
func flagError(_ *cobra.Command, err error) error {
	var bad *pflag.InvalidValueError
	if errors.As(err, &bad) {
		f := bad.GetFlag()
		cause := errors.Unwrap(bad)
		if cause == nil {
			cause = err
		}
		// Parsers that name their flag already (ship.ParseMethod...) are not prefixed twice.
		if strings.HasPrefix(cause.Error(), "--"+f.Name) {
			return usageError{cause}
		}
		return usageErrorf("--%s %q: %v", f.Name, bad.GetValue(), cause)
	}
	return usageError{err}
}

// setVerbosity sends client-go's klog output to w at level v, or nowhere at 0: among others
// client-go logs one line per connection a port-forward could not make while the app restarts,
// expected here, and hotpod reports the failures that matter.
func setVerbosity(w io.Writer, v int) {
	if v <= 0 {
		klog.SetLogger(logr.Discard())
		return
	}
	klog.ClearLogger()
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	for name, value := range map[string]string{"v": strconv.Itoa(v), "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value)
	}
	klog.SetOutput(w)
}

// args checks the positional arguments: a wrong count is a usage error.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			args = args[:dash]
		}
		if len(args) > n {
			if n == 0 {
				return usageErrorf("unexpected argument %q: %s", args[0], what)
			}
			return usageErrorf("unexpected argument %q: %s", args[n], what)
		}
		return nil
	}
}

// splitDash splits a command's arguments at "--": before it the command's, after it the app's.
func splitDash(cmd *cobra.Command, args []string) (pos, rest []string) {
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		return args[:dash], args[dash:]
	}
	return args, nil
}

// onePackage is the optional PACKAGE argument of a command ("." when absent).
func onePackage(pos []string) string {
	if len(pos) == 0 {
		return "."
	}
	return pos[0]
}

func newVersionCommand(env *Env) *cobra.Command {
	var out OutputFlags
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print hotpod's version, its Go version and the agent protocol it speaks",
		Args:  maxArgs(0, "version takes none"),
		RunE: func(*cobra.Command, []string) error {
			v := versionInfo{Version: Version(), Go: runtime.Version(), Protocol: agentapi.ProtocolVersion}
			if out.JSON() {
				return json.NewEncoder(env.Stdout).Encode(v)
			}
			fmt.Fprintf(env.Stdout, "hotpod %s\ngo %s\nagent protocol %d\n", v.Version, v.Go, v.Protocol)
			return nil
		},
	}
	out.AddFlags(cmd.Flags())
	return cmd
}

type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Protocol int    `json:"agentProtocol"`
}

// Version is the module version hotpod was built from ("(devel)" from a checkout), with the VCS
// revision when the build recorded it.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + strings.TrimSpace(s.Value)
		}
	}
	return v
}

// firstBuildFailed turns a failed first build into the compiler's messages and what to do.
func firstBuildFailed(err error) error {
	var be *build.Error
	if errors.As(err, &be) {
		return errors.New(be.Output + "\nthe first build failed: fix it and run hotpod again")
	}
	return err
}

// loadKube is kube.Load with the hint for hotpod's own test cluster, inside a checkout of
// hotpod, where hack/cluster.sh exists.
// loadKube connects to the cluster the flags name; say (may be nil) hears which one first, as
// an API server that does not answer takes a while to say so.
func loadKube(ctx context.Context, env *Env, f KubeFlags, say func(string)) (*kube.Client, error) {
	k, err := kube.Open(f.Selector)
	if err == nil {
		if say != nil {
			say("connecting to " + k.Config.Host + " (context " + k.Context + ")")
		}
		err = k.Check(ctx)
	}
	if errors.Is(err, kube.ErrNoCluster) {
		if root, ok := hotpodCheckout(env.Dir); ok {
			return nil, fmt.Errorf("%w (for hotpod's local test cluster: %s up)", err, filepath.Join(root, "hack", "cluster.sh"))
		}
	}
	return k, err
}

// noRegistry says that no registry was named, and, inside a checkout of hotpod, which one its
// local test cluster has.
func noRegistry(env *Env, suffix string) error {
	msg := "no registry to push images to: set --default-repo, HOTPOD_DEFAULT_REPO, KO_DOCKER_REPO or hotpod.yaml's defaultRepo"
	if _, ok := hotpodCheckout(env.Dir); ok {
		msg += " (hack/cluster.sh's local registry is 127.0.0.1:5000" + suffix + ")"
	}
	return errors.New(msg)
}

// hotpodCheckout finds the checkout of hotpod dir is in: the module root whose go.mod declares
// module github.com/hotpod/hotpod.
func hotpodCheckout(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
					return d, strings.Trim(f[1], `"`) == "github.com/hotpod/hotpod"
				}
			}
			return "", false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}
