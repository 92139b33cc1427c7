// Package local runs the agent as a process on the developer's machine, in a private work
// directory: `hotpod dev --local`, and the floor the cluster loop is measured against.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/workdir"
)

// Options say what the local agent runs.
type Options struct {
	Agent  string   // the agent binary
	Binary string   // the app's first build; copied into the work directory
	Name   string   // the app's file name
	Args   []string // the app's arguments
	Ready  string   // the agent's --ready probe (tcp:PORT, http://HOST:PORT/PATH)
	Grace  time.Duration
	// StopPolicy is the agent's --stop-policy ("": the agent's default, fast).
	StopPolicy string
	Output     io.Writer // the app's output (and the agent's own messages)
	// Env is added to the app's environment (hotpod's own: KO_DATA_PATH).
	Env []string
}

// Agent is a running local agent.
type Agent struct {
	Client *agentapi.Client
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start copies the binary into a fresh work directory and starts the agent on it.
func Start(ctx context.Context, o Options) (*Agent, error) {
	dir, err := workdir.New("hotpod-local")
	if err != nil {
		return nil, err
	}
	a := &Agent{dir: dir, exited: make(chan struct{})}
	if err := a.start(ctx, o); err != nil {
		workdir.Remove(dir) //nolint:errcheck // best effort
		return nil, err
	}
	return a, nil
}

func (a *Agent) start(ctx context.Context, o Options) error {
	appDir := filepath.Join(a.dir, "app")
	if err := os.Mkdir(appDir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(appDir, o.Name)
	if err := copyFile(o.Binary, bin); err != nil {
		return fmt.Errorf("install the first build: %w", err)
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	addrFile := filepath.Join(a.dir, "agent.addr")
	args := []string{"--listen", "127.0.0.1:0", "--addr-file", addrFile, "--binary", bin, "--grace", o.Grace.String()}
	if o.Ready != "" {
		args = append(args, "--ready", o.Ready)
	}
	if o.StopPolicy != "" {
		args = append(args, "--stop-policy", o.StopPolicy)
	}
	args = append(append(args, "--", bin), o.Args...)
	a.cmd = exec.Command(o.Agent, args...)
	a.cmd.Dir = appDir
	a.cmd.Env = append(append(os.Environ(), o.Env...), "HOTPOD_TOKEN="+token)
	a.cmd.Stdout, a.cmd.Stderr = o.Output, o.Output
	a.cmd.SysProcAttr = agentAttr()
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("start the agent: %w", err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			a.Client = &agentapi.Client{Base: "http://" + strings.TrimSpace(string(b)), Token: token}
			return nil
		}
		select {
		case <-a.exited:
			return errors.New("the agent exited before it listened (see its output above)")
		case <-ctx.Done():
			a.Stop()
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Stop stops the agent (which stops the app) and removes the work directory.
func (a *Agent) Stop() {
	if a.cmd != nil && a.cmd.Process != nil {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.exited
		}
	}
	workdir.Remove(a.dir) //nolint:errcheck // best effort
}

func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
