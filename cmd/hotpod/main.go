// hotpod is the CLI: see `hotpod --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/hotpod/hotpod/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// client-go logs through klog, among others one line per connection a port-forward could not
	// make while the app restarts: expected here, and hotpod reports the failures that matter.
	klog.SetLogger(logr.Discard())
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotpod:", err)
		os.Exit(1)
	}
	code := cli.Main(ctx, cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Dir: dir}, os.Args[1:])
	stop()
	os.Exit(code)
}
