// Package build compiles the app with the developer's own go command and GOCACHE, for the
// platform the app runs on.
//
// Cancelling a build (a newer edit, Ctrl-C) leaves nothing behind. The go command is interrupted
// as a terminal's Ctrl-C would (SIGINT to its process group, its compilers included), not killed
// alone with SIGKILL, which leaves the compilers running. And since go build handles no signal,
// it cannot remove its work directory when one ends it: each go command gets a GOTMPDIR of its
// own, which hotpod removes after it exits.
//
// Quick, for hotpod dev's edits, runs the compiler and linker as the last go build ran them,
// without the go command, where it can prove that gives go build's binary (quick.go).
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/workdir"
)

// Options are the user's build settings.
type Options struct {
	GOOS, GOARCH string
	LDFlags      string // passed as -ldflags; hotpod adds nothing
	GCFlags      string
	Tags         string
	// Env is extra environment (GOFLAGS, GOPRIVATE...) on top of the process's own.
	Env []string
	// KeepPaths builds without -trimpath: the binary names its sources by their paths on this
	// machine, where a debugger's client (an IDE, dlv connect) finds them (hotpod dev --debug).
	KeepPaths bool
	// Quick builds each edit of hotpod dev with Quick (the compiler and linker run again as the
	// last go build ran them, when that provably makes go build's binary); the caller wraps the
	// Builder (NewQuick) when it is set.
	Quick bool
	// PostBuild is a command run on each built binary (its path appended as the last argument)
	// before it is used: a packer such as upx, a signer. Its time counts as build time.
	PostBuild []string
}

// Result is one successful build.
type Result struct {
	Path     string
	Duration time.Duration
	// Quick says that Quick made the binary by running the compiler and linker itself; when it
	// ran the go command instead, Why says why (both are empty for a plain Builder).
	Quick bool
	Why   string
}

// Error is a failed build: Output holds the compiler's messages (file:line: ...).
type Error struct {
	Output string
	Err    error
}

func (e *Error) Error() string {
	if e.Output != "" {
		return e.Output
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Builder compiles one main package.
type Builder struct {
	Dir     string // where the go command runs (the module)
	Package string // import path or ./relative path
	Options Options
}

// Build compiles into out. Cancelling ctx stops the compiler (a newer edit arrived).
func (b *Builder) Build(ctx context.Context, out string) (Result, error) {
	cmd := Command(ctx, "go", b.args(out)...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), b.Env()...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	t := time.Now()
	err := Run(cmd)
	if err := b.failed(ctx, err, output.String()); err != nil {
		return Result{}, err
	}
	return b.post(ctx, out, t)
}

// args are the go command's arguments for a build into out; extra go right after "build".
func (b *Builder) args(out string, extra ...string) []string {
	args := append([]string{"build"}, extra...)
	args = append(args, "-o", out)
	if !b.Options.KeepPaths {
		args = append(args, "-trimpath")
	}
	if b.Options.LDFlags != "" {
		args = append(args, "-ldflags", b.Options.LDFlags)
	}
	if b.Options.GCFlags != "" {
		args = append(args, "-gcflags", b.Options.GCFlags)
	}
	if b.Options.Tags != "" {
		args = append(args, "-tags", b.Options.Tags)
	}
	return append(args, b.Package)
}

// failed turns the go command's exit into the build's error: nil when it succeeded, ctx's
// error when it was cancelled, else an *Error with its output.
func (b *Builder) failed(ctx context.Context, err error, output string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run go build: %w (is the Go toolchain on PATH?)", err)
	}
	msg := strings.TrimRight(output, "\n")
	if strings.Contains(msg, "go.mod file not found") { // go's own advice (go help modules) is no help here
		msg += fmt.Sprintf("\nno go.mod in %s or any directory above it: run hotpod in your module's directory", b.Dir)
	}
	return &Error{Output: msg, Err: err}
}

// post runs the --post-build command on out, and gives the build's result: its time counts
// from t.
func (b *Builder) post(ctx context.Context, out string, t time.Time) (Result, error) {
	if len(b.Options.PostBuild) > 0 {
		post := Command(ctx, b.Options.PostBuild[0], append(b.Options.PostBuild[1:], out)...)
		post.Dir = b.Dir
		var msg bytes.Buffer
		post.Stdout, post.Stderr = &msg, &msg
		if err := Run(post); err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{}, &Error{Output: fmt.Sprintf("--post-build %s: %v\n%s", strings.Join(b.Options.PostBuild, " "), err, strings.TrimSpace(msg.String())), Err: err}
		}
	}
	return Result{Path: out, Duration: time.Since(t)}, nil
}

// Env is the environment the build adds: a static binary for the target platform.
func (b *Builder) Env() []string {
	env := []string{"CGO_ENABLED=0"}
	if _, set := os.LookupEnv("GOGC"); !set {
		// The linker is most of an incremental build, and it collects garbage often: with GOGC=400
		// it spends ~10% less CPU (seedapp 1.16 s → 1.03 s, hello 0.39 s → 0.36 s, for ~30 MB
		// more memory; docs/benchmarks.md).
		env = append(env, "GOGC=400")
	}
	if b.Options.GOOS != "" {
		env = append(env, "GOOS="+b.Options.GOOS)
	}
	if b.Options.GOARCH != "" {
		env = append(env, "GOARCH="+b.Options.GOARCH)
	}
	return append(env, b.Options.Env...)
}

// WaitDelay is how long a cancelled command may take to exit after SIGINT before it is killed.
const WaitDelay = 10 * time.Second

// Command is exec.CommandContext for the go command, or a tool run beside it (a --post-build
// command), that cancelling ctx must stop without leaving anything behind: it runs in a process
// group of its own, which cancellation interrupts (SIGINT) and, after WaitDelay, kills. Run it
// with Run.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	ownGroup(cmd)
	cmd.WaitDelay = WaitDelay
	return cmd
}

// Run runs cmd, made by Command, with a GOTMPDIR of its own, removed once cmd has exited
// however it ended, and kills what is left of its process group if cmd had to be killed.
func Run(cmd *exec.Cmd) error {
	tmp, remove, err := goTmpDir()
	if err != nil {
		return err
	}
	defer remove()
	return runIn(cmd, tmp)
}

// runIn runs cmd, made by Command, with GOTMPDIR tmp (which the caller removes).
func runIn(cmd *exec.Cmd, tmp string) error {
	cmd.Env = append(cmd.Environ(), "GOTMPDIR="+tmp)
	err := cmd.Run()
	reap(cmd)
	return err
}

// goTmpDir makes a directory for one go command's work directory: under the user's GOTMPDIR
// when set, else a hotpod work directory (which the next hotpod sweeps if this one is killed).
func goTmpDir() (string, func(), error) {
	if user := os.Getenv("GOTMPDIR"); user != "" {
		dir, err := os.MkdirTemp(user, "hotpod-go-")
		if err != nil {
			return "", nil, fmt.Errorf("GOTMPDIR: %w", err)
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	dir, err := workdir.New("hotpod-go")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { workdir.Remove(dir) }, nil //nolint:errcheck // best effort
}
