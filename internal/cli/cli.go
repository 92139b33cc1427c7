// Package cli holds hotpod's commands: flags and wiring; the work is done in the other packages.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/hotpod/hotpod/internal/build"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdout, Stderr io.Writer
	Dir            string // the working directory
}

type command struct {
	name, summary string
	run           func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "watch, build and hot-swap the app on every edit", runDev},
		{"build", "build and push the image hotpod deploys for a main package", runBuild},
		{"deploy", "build the ko:// images of manifests and apply them once, without the agent", runDeploy},
		{"bench", "measure edit→ready on the cluster: hotpod against rebuilding the image and the other ways", runBench},
		{"version", "print hotpod's version", runVersion},
	}
}

// errUsage marks an error the command already explained with its usage.
var errUsage = errors.New("usage")

// Main runs the command named by args and returns the process exit code.
func Main(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(env.Stderr, "hotpod %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "hotpod: unknown command %q: run 'hotpod --help' for the list\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `hotpod makes the edit → running loop of a Go service as fast as local development: it
watches the sources, builds the binary, ships only what changed into the running containers,
and restarts the process in place.

Usage: hotpod COMMAND [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'hotpod COMMAND --help' for a command's flags.\n")
}

func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("hotpod "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: hotpod %s\n\n", synopsis)
		fmt.Fprintln(env.Stderr, "Flags:")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after the positional arguments; everything after
// "--" is returned as rest.
func parse(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, rest, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runVersion(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "version", "version")
	if _, _, err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "hotpod", Version())
	return nil
}

// Version is the module version hotpod was built from ("(devel)" from a checkout).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + strings.TrimSpace(s.Value)
		}
	}
	return v
}

// buildFlags registers the go build flags every building command takes.
func buildFlags(fs *flag.FlagSet) *build.Options {
	o := &build.Options{}
	fs.StringVar(&o.LDFlags, "ldflags", "-s -w", "go build -ldflags; the default drops symbols and DWARF, the linker's biggest cost")
	fs.StringVar(&o.GCFlags, "gcflags", "", "go build -gcflags")
	fs.StringVar(&o.Tags, "tags", "", "go build -tags")
	fs.Func("post-build", "a command run on each built binary, its path appended, before it ships (e.g. \"upx -q -1\"); its time counts as build time", func(s string) error {
		o.PostBuild = strings.Fields(s)
		return nil
	})
	return o
}

// firstBuildFailed turns a failed first build into the compiler's messages and what to do.
func firstBuildFailed(err error) error {
	var be *build.Error
	if errors.As(err, &be) {
		return errors.New(be.Output + "\nthe first build failed: fix it and run hotpod again")
	}
	return err
}

// onePackage is the optional PACKAGE argument of a command ("." when absent).
func onePackage(fs *flag.FlagSet, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return ".", nil
	case 1:
		return pos[0], nil
	}
	fs.Usage()
	return "", errUsage
}
