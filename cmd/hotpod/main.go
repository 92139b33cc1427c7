// hotpod is the CLI: see `hotpod --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hotpod/hotpod/internal/cli"
)

func main() {
	// Ctrl-C (or SIGTERM) once: the command cleans up and exits 130. Twice: it exits at once,
	// saying what the cleanup had not yet removed.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var in cli.Interrupt
	ctx, stop := in.Watch(context.Background(), sigs, os.Stderr, os.Exit)
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotpod:", err)
		os.Exit(1)
	}
	code := cli.Main(ctx, cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Dir: dir, Interrupt: &in}, os.Args[1:])
	stop()
	os.Exit(code)
}
