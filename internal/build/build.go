// Package build compiles the app with the developer's own go command and GOCACHE, for the
// platform the app runs on.
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
)

// Options are the user's build settings.
type Options struct {
	GOOS, GOARCH string
	LDFlags      string // passed as -ldflags; hotpod adds nothing
	GCFlags      string
	Tags         string
	// Env is extra environment (GOFLAGS, GOPRIVATE...) on top of the process's own.
	Env []string
	// PostBuild is a command run on each built binary (its path appended as the last argument)
	// before it is used: a packer such as upx, a signer. Its time counts as build time.
	PostBuild []string
}

// Result is one successful build.
type Result struct {
	Path     string
	Duration time.Duration
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
	args := []string{"build", "-trimpath", "-o", out}
	if b.Options.LDFlags != "" {
		args = append(args, "-ldflags", b.Options.LDFlags)
	}
	if b.Options.GCFlags != "" {
		args = append(args, "-gcflags", b.Options.GCFlags)
	}
	if b.Options.Tags != "" {
		args = append(args, "-tags", b.Options.Tags)
	}
	args = append(args, b.Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), b.Env()...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	t := time.Now()
	err := cmd.Run()
	d := time.Since(t)
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return Result{}, fmt.Errorf("run go build: %w (is the Go toolchain on PATH?)", err)
		}
		return Result{}, &Error{Output: strings.TrimRight(output.String(), "\n"), Err: err}
	}
	if len(b.Options.PostBuild) > 0 {
		post := exec.CommandContext(ctx, b.Options.PostBuild[0], append(b.Options.PostBuild[1:], out)...)
		post.Dir = b.Dir
		if msg, err := post.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{}, &Error{Output: fmt.Sprintf("--post-build %s: %v\n%s", strings.Join(b.Options.PostBuild, " "), err, strings.TrimSpace(string(msg))), Err: err}
		}
		d = time.Since(t)
	}
	return Result{Path: out, Duration: d}, nil
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
