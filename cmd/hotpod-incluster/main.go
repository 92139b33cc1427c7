// hotpod-incluster is the comparator `hotpod bench --strategy incluster` runs inside a toolchain
// image: it compiles the app from the sources in the container, runs it, and on each sync of
// changed files compiles again there and restarts it (the original article's strategy E).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hotpod/hotpod/internal/bench/incluster"
)

func main() {
	fs := flag.NewFlagSet("hotpod-incluster", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: hotpod-incluster [flags]

Builds the main package --pkg of the module in --src with --go, runs it, and serves POST /sync on
--listen (loopback; reached through a port-forward): a tar of changed files, written into --src,
then compiled and the app restarted. Used by hotpod bench; not part of hotpod dev.

Flags:
`)
		fs.PrintDefaults()
	}
	src := fs.String("src", "/src", "the module's root")
	pkg := fs.String("pkg", ".", "the main package, relative to --src")
	goCmd := fs.String("go", "/usr/local/go/bin/go", "the go command")
	ldflags := fs.String("ldflags", "-s -w", "go build -ldflags")
	out := fs.String("out", "/tmp/app", "where the binary is written and run from")
	listen := fs.String("listen", "127.0.0.1:7070", "loopback address of the sync endpoint")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if !strings.HasPrefix(*listen, "127.0.0.1:") && !strings.HasPrefix(*listen, "localhost:") {
		fmt.Fprintf(os.Stderr, "hotpod-incluster: --listen %s: must be a loopback address (127.0.0.1:PORT)\n", *listen)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := incluster.Run(ctx, incluster.Config{Src: *src, Package: *pkg, Go: *goCmd,
		Flags: []string{"-trimpath", "-ldflags", *ldflags}, Out: *out, Listen: *listen, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotpod-incluster:", err)
		os.Exit(1)
	}
}
