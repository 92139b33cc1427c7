// worker is the e2e tests' background process: it logs a line now and then until SIGTERM.
// `worker health` exits 0 (an exec probe); `worker --once` does its work and exits 0 (a Job).
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const version = "worker v1"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "--once" {
		log.Printf("%s: one run, done", version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("%s: working", version)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
			log.Printf("%s: still working", version)
		}
	}
}
