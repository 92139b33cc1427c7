// hotpod-agent is the entrypoint of a dev container: it runs the app, swaps in the new binaries
// hotpod sends, and restarts the app in place. See `hotpod-agent --help`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
)

func main() {
	fs := flag.NewFlagSet("hotpod-agent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: hotpod-agent [flags] -- COMMAND [ARGS...]

Runs COMMAND and supervises it: passes its output and exit code through, forwards SIGTERM, SIGINT,
SIGQUIT and SIGHUP, reaps zombies as PID 1, and keeps running when the app crashes. A control API on
a loopback address (reached only through port-forward, authenticated with the session token) lets
hotpod swap in a new binary and restart the app in place.

Flags:
`)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:7878", "loopback address of the control API")
	tokenFile := fs.String("token-file", "", "file holding the session token (default: $HOTPOD_TOKEN)")
	binary := fs.String("binary", "", "the binary that updates replace (default: COMMAND)")
	seed := fs.String("seed", "", "copy this file to --binary first, unless --binary exists (the image's binary into an emptyDir)")
	ready := fs.String("ready", "", "readiness probe: tcp:PORT or http://127.0.0.1:PORT/PATH")
	stopSig := fs.String("stop-signal", "TERM", "signal that asks the app to stop before a restart")
	grace := fs.Duration("grace", 10*time.Second, "how long the app may take to stop before it is killed")
	addrFile := fs.String("addr-file", "", "write the bound control address to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *seed != "" {
		if *binary == "" {
			fmt.Fprintln(os.Stderr, "hotpod-agent: --seed needs --binary")
			os.Exit(2)
		}
		if err := agent.Seed(*seed, *binary); err != nil {
			fmt.Fprintln(os.Stderr, "hotpod-agent:", err)
			os.Exit(2)
		}
	}
	if err := run(*listen, *tokenFile, *binary, *ready, *stopSig, *grace, *addrFile, fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "hotpod-agent:", err)
		os.Exit(2)
	}
}

func run(listen, tokenFile, binary, ready, stopSig string, grace time.Duration, addrFile string, command []string) error {
	token := os.Getenv("HOTPOD_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	probe, err := agent.ParseProbe(ready)
	if err != nil {
		return err
	}
	sig, err := agent.ParseSignal(stopSig)
	if err != nil {
		return err
	}
	// The app must not see the token.
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTPOD_TOKEN=") {
			env = append(env, kv)
		}
	}
	code, err := agent.Run(context.Background(),
		agent.Options{Listen: listen, Token: token, AddrFile: addrFile},
		agent.Config{Command: command, Binary: binary, Env: env, StopSignal: sig, Grace: grace, Probe: probe,
			Stdout: os.Stdout, Stderr: os.Stderr, Reap: os.Getpid() == 1})
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}
