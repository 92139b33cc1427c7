// hotpod-agent is the entrypoint of a dev container: it runs the app, swaps in the new binaries
// hotpod sends, syncs files the app reads, and restarts the app in place. See `hotpod-agent --help`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
)

func main() {
	fs := flag.NewFlagSet("hotpod-agent", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: hotpod-agent [flags] -- COMMAND [ARGS...]

Runs COMMAND (resolved through the PATH of its environment, as the container runtime does) and
supervises it: passes its output and exit code through, forwards SIGTERM, SIGINT, SIGQUIT and
SIGHUP, reaps zombies, and keeps running when the app crashes. A control API on a loopback address
(reached only through port-forward, authenticated with the session token) lets hotpod replace
--binary and restart COMMAND in place, and write files into --sync-dir.

Flags:
`)
		fs.PrintDefaults()
	}
	var f flags
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7878", "loopback address of the control API")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the session token (default: $HOTPOD_TOKEN)")
	fs.StringVar(&f.binary, "binary", "", "the file updates replace (default: COMMAND's executable); COMMAND may run it through a wrapper")
	fs.StringVar(&f.seed, "seed", "", "copy this file to --binary first, unless --binary holds the binary the agent last put there (the image's binary into an emptyDir)")
	fs.StringVar(&f.probe, "probe", "", `readiness probe as JSON, Kubernetes' fields: {"httpGet":{"port":8080,"path":"/healthz"}}, tcpSocket, exec, grpc; timeoutSeconds`)
	fs.StringVar(&f.ready, "ready", "", "readiness probe shorthand: tcp:PORT or http(s)://HOST:PORT/PATH")
	fs.StringVar(&f.stopSig, "stop-signal", "TERM", "signal that asks the app to stop")
	fs.DurationVar(&f.grace, "grace", 10*time.Second, "how long the app may take to stop when the agent stops (and on restarts with --stop-policy graceful)")
	fs.StringVar(&f.stopPolicy, "stop-policy", string(agent.StopFast), fmt.Sprintf("how a restart stops the app: %s (stop signal, SIGKILL to its group after %v), graceful (after --grace), kill (SIGKILL at once)", agent.StopFast, agent.FastGrace))
	fs.StringVar(&f.syncDir, "sync-dir", "", "directory PUT /v1/files writes into (the app's KO_DATA_PATH, an emptyDir)")
	fs.StringVar(&f.debug, "debug", "", "where PUT /v1/debug/dlv puts dlv (in an emptyDir); once it is there the app runs under it, `dlv exec` of --binary with the app's own arguments")
	fs.StringVar(&f.syncSeed, "sync-seed", "", "copy this directory tree into --sync-dir first, unless it was seeded before")
	fs.BoolVar(&f.exitWithApp, "exit-with-app", false, "exit with the app's code when it exits on its own, as the container would without the agent (Jobs); by default the agent stays up for the next binary")
	fs.StringVar(&f.addrFile, "addr-file", "", "write the bound control address to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	f.command = fs.Args()
	code, err := run(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hotpod-agent:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

type flags struct {
	listen, tokenFile, binary, seed, probe, ready, stopSig, stopPolicy, syncDir, syncSeed, addrFile, debug string
	grace                                                                                                  time.Duration
	command                                                                                                []string
	exitWithApp                                                                                            bool
}

func run(f flags) (int, error) {
	token := os.Getenv("HOTPOD_TOKEN")
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return 2, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if f.seed != "" && f.binary == "" {
		return 2, errors.New("--seed needs --binary")
	}
	if f.syncSeed != "" {
		if f.syncDir == "" {
			return 2, errors.New("--sync-seed needs --sync-dir")
		}
		if err := agent.SeedDir(f.syncSeed, f.syncDir); err != nil {
			return 2, err
		}
	}
	var probe *agentapi.Probe
	switch {
	case f.probe != "" && f.ready != "":
		return 2, errors.New("--probe and --ready both given: pass one")
	case f.probe != "":
		probe = new(agentapi.Probe)
		dec := json.NewDecoder(strings.NewReader(f.probe))
		dec.DisallowUnknownFields()
		if err := dec.Decode(probe); err != nil {
			return 2, fmt.Errorf("--probe: %w (want a Kubernetes probe as JSON, e.g. {\"httpGet\":{\"port\":8080,\"path\":\"/healthz\"}})", err)
		}
		if err := probe.Validate(); err != nil {
			return 2, fmt.Errorf("--probe: %w", err)
		}
	default:
		var err error
		if probe, err = agent.ParseReady(f.ready); err != nil {
			return 2, err
		}
	}
	sig, err := agent.ParseSignal(f.stopSig)
	if err != nil {
		return 2, err
	}
	policy, err := agent.ParseStopPolicy(f.stopPolicy)
	if err != nil {
		return 2, err
	}
	// The app must not see the token.
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTPOD_TOKEN=") {
			env = append(env, kv)
		}
	}
	// Orphans of the app come to the agent, which reaps them: as PID 1 always, elsewhere as a
	// subreaper (so a restart can tell when the old app's whole group is gone).
	reap := os.Getpid() == 1 || agent.BecomeSubreaper()
	return agent.Run(context.Background(),
		agent.Options{Listen: f.listen, Token: token, AddrFile: f.addrFile},
		agent.Config{Command: f.command, Binary: f.binary, Seed: f.seed, Env: env, StopSignal: sig, Grace: f.grace, StopPolicy: policy,
			Probe: probe, SyncDir: f.syncDir, Delve: f.debug, Stdout: os.Stdout, Stderr: os.Stderr, Reap: reap, ExitWithApp: f.exitWithApp})
}
