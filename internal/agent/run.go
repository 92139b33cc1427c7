package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// Options are the agent's settings besides what it supervises.
type Options struct {
	Listen   string // must be a loopback address: the API is reached only through port-forward
	Token    string
	AddrFile string // where to write the address actually bound (for port 0)
}

// Run supervises cfg until a stop signal arrives and returns the exit code the agent should exit
// with: the app's.
func Run(ctx context.Context, o Options, cfg Config) (int, error) {
	if o.Token == "" {
		return 2, errors.New("no session token: set HOTPOD_TOKEN or pass --token-file")
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return 2, fmt.Errorf("--listen %q: the control API must bind a loopback address such as 127.0.0.1:7878", o.Listen)
	}
	s, err := New(cfg)
	if err != nil {
		return 2, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return 2, fmt.Errorf("control API: %w", err)
	}
	if o.AddrFile != "" {
		if err := os.WriteFile(o.AddrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			return 2, fmt.Errorf("--addr-file: %w", err)
		}
	}
	// Subscribe before the app starts so no signal is missed.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan agentapi.Event // the app's exits, for ExitWithApp
	if cfg.ExitWithApp {
		ch, unsubscribe := s.Subscribe()
		defer unsubscribe()
		events = ch
	}
	if err := s.Start(ctx); err != nil {
		ln.Close()
		return 127, err
	}
	srv := NewServer(s, o.Token)
	go srv.Serve(ln) //nolint:errcheck // ends with Close below

	var stopWith syscall.Signal
	for stopWith == 0 {
		select {
		case <-ctx.Done():
			stopWith = cfg.StopSignal
		case e := <-events:
			if e.Type == "exited" && e.ExitCode != nil {
				srv.Close()
				return *e.ExitCode, nil
			}
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				s.Signal(syscall.SIGHUP)
				continue
			}
			stopWith = sig.(syscall.Signal)
		}
	}
	code := s.Shutdown(stopWith)
	srv.Close()
	return code, nil
}

// ParseSignal reads a signal name: TERM, SIGTERM, INT, QUIT, HUP, KILL, USR1, USR2.
func ParseSignal(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "TERM":
		return syscall.SIGTERM, nil
	case "INT":
		return syscall.SIGINT, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "HUP":
		return syscall.SIGHUP, nil
	case "KILL":
		return syscall.SIGKILL, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	}
	return 0, fmt.Errorf("stop signal %q: want one of TERM, INT, QUIT, HUP, KILL, USR1, USR2", name)
}
