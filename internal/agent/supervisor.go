// Package agent is the supervisor that runs as a dev container's entrypoint: it starts the app,
// passes its output and exit code through, swaps in new binaries sent by the hotpod CLI and
// restarts the app in place, and reports what happened over a small control API (server.go).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// Config says what the agent supervises and how.
type Config struct {
	// Command is the app's argv. The binary at Binary is what updates replace; it is exec'd with
	// Command as its arguments.
	Command []string
	Binary  string
	Env     []string
	Dir     string
	// StopSignal asks the app to exit; after Grace it is killed.
	StopSignal syscall.Signal
	Grace      time.Duration
	Probe      Probe
	// Stdout and Stderr receive the app's output as it is written.
	Stdout, Stderr io.Writer
	// Reap makes the agent wait for every child of the process (it runs as PID 1 and inherits
	// orphans), not only for the app.
	Reap bool
}

// Supervisor runs one app process at a time.
type Supervisor struct {
	cfg Config
	out *output

	swap sync.Mutex // one update or restart at a time

	mu       sync.Mutex
	proc     *process
	sha      delta.Hash
	size     int64
	restarts int
	exitCode *int
	lastOut  []string
	shutdown bool
	subs     map[chan agentapi.Event]struct{}
}

// process is one run of the app.
type process struct {
	pid     int
	start   time.Time
	readyAt time.Time
	state   agentapi.State
	stopped bool          // the agent asked it to stop
	exited  chan struct{} // closed when it has been reaped and its output drained
	ready   chan struct{} // closed when the probe passed
	cancel  context.CancelFunc
	code    int
	drained sync.WaitGroup
}

// New checks the binary and returns a supervisor that has not started the app yet.
func New(cfg Config) (*Supervisor, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("no command to run: pass it after --")
	}
	if cfg.Binary == "" {
		cfg.Binary = cfg.Command[0]
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	b, err := os.ReadFile(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("read the app binary: %w", err)
	}
	s := &Supervisor{cfg: cfg, out: newOutput(20), sha: delta.Sum(b), size: int64(len(b)),
		subs: map[chan agentapi.Event]struct{}{}}
	return s, nil
}

// Start starts the app and, when Config.Reap is set, the zombie reaper. ctx bounds the
// reaper's life.
func (s *Supervisor) Start(ctx context.Context) error {
	if s.cfg.Reap {
		go s.reap(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked()
}

func (s *Supervisor) startLocked() error {
	rOut, wOut, err := os.Pipe()
	if err != nil {
		return err
	}
	rErr, wErr, err := os.Pipe()
	if err != nil {
		rOut.Close()
		wOut.Close()
		return err
	}
	attr := &os.ProcAttr{
		Dir:   s.cfg.Dir,
		Env:   s.cfg.Env,
		Files: []*os.File{os.Stdin, wOut, wErr},
		// Its own process group, so the kill after the grace period reaches the app's children.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	}
	if attr.Env == nil {
		attr.Env = os.Environ()
	}
	osp, err := os.StartProcess(s.cfg.Binary, s.cfg.Command, attr)
	wOut.Close()
	wErr.Close()
	if err != nil {
		rOut.Close()
		rErr.Close()
		return fmt.Errorf("start %s: %w", s.cfg.Binary, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{pid: osp.Pid, start: time.Now(), state: agentapi.StateStarting,
		exited: make(chan struct{}), ready: make(chan struct{}), cancel: cancel}
	p.drained.Add(2)
	go func() { defer p.drained.Done(); s.out.copy(s.cfg.Stdout, rOut); rOut.Close() }()
	go func() { defer p.drained.Done(); s.out.copy(s.cfg.Stderr, rErr); rErr.Close() }()
	s.proc = p
	s.exitCode, s.lastOut = nil, nil
	s.emitLocked(agentapi.Event{Type: "started", PID: p.pid, SHA256: s.sha.String()})
	if !s.cfg.Reap {
		go func() {
			st, err := osp.Wait()
			if err != nil {
				s.exited(osp.Pid, syscall.WaitStatus(0xff00)) // exit code 255: unknown
				return
			}
			s.exited(osp.Pid, st.Sys().(syscall.WaitStatus))
		}()
	}
	if s.cfg.Probe == nil {
		s.readyLocked(p)
	} else {
		go s.probe(ctx, p)
	}
	return nil
}

func (s *Supervisor) probe(ctx context.Context, p *process) {
	for i := 0; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.cfg.Probe.Check(cctx)
		cancel()
		if err == nil {
			s.mu.Lock()
			if p.state == agentapi.StateStarting {
				s.readyLocked(p)
			}
			s.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollInterval(i)):
		}
	}
}

func (s *Supervisor) readyLocked(p *process) {
	p.state = agentapi.StateReady
	p.readyAt = time.Now()
	close(p.ready)
	s.emitLocked(agentapi.Event{Type: "ready", PID: p.pid, AfterMS: agentapi.Ms(time.Since(p.start))})
}

// exited records the end of the app process pid.
func (s *Supervisor) exited(pid int, ws syscall.WaitStatus) {
	s.mu.Lock()
	p := s.proc
	if p == nil || p.pid != pid {
		s.mu.Unlock()
		return // an orphan reaped as PID 1
	}
	s.mu.Unlock()
	// Let the output drain so the last lines are complete, but do not wait on a grandchild
	// that keeps the pipe open.
	drained := make(chan struct{})
	go func() { p.drained.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(200 * time.Millisecond):
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.cancel()
	p.code = code
	ran := time.Since(p.start)
	s.exitCode = &code
	if p.stopped || s.shutdown {
		p.state = agentapi.StateStopped
		s.emitLocked(agentapi.Event{Type: "stopped", PID: pid, ExitCode: &code, AfterMS: agentapi.Ms(ran)})
	} else {
		p.state = agentapi.StateExited
		s.lastOut = s.out.last()
		s.emitLocked(agentapi.Event{Type: "exited", PID: pid, ExitCode: &code, AfterMS: agentapi.Ms(ran), LastOutput: s.lastOut})
	}
	close(p.exited)
}

// reap waits for every child (the agent is PID 1 and inherits orphans) and hands the app's
// status to exited.
func (s *Supervisor) reap(ctx context.Context) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			go s.exited(pid, ws)
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
	}
}

// Signal passes sig to the app.
func (s *Supervisor) Signal(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		_ = syscall.Kill(p.pid, sig)
	}
}

// stop asks the app to exit with sig and kills its process group after the grace period.
// It returns once the app has been reaped.
func (s *Supervisor) stop(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	if p == nil {
		s.mu.Unlock()
		return
	}
	p.stopped = true
	s.mu.Unlock()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(p.pid, sig)
	select {
	case <-p.exited:
	case <-time.After(s.cfg.Grace):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Shutdown stops the app with sig (the configured stop signal when 0) and returns its exit code:
// the code the agent itself should exit with.
func (s *Supervisor) Shutdown(sig syscall.Signal) int {
	s.swap.Lock()
	defer s.swap.Unlock()
	s.mu.Lock()
	s.shutdown = true
	s.mu.Unlock()
	if sig == 0 {
		sig = s.cfg.StopSignal
	}
	s.stop(sig)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exitCode != nil {
		return *s.exitCode
	}
	return 0
}

// Status reports the binary and the app's state.
func (s *Supervisor) Status() agentapi.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Supervisor) statusLocked() agentapi.Status {
	st := agentapi.Status{SHA256: s.sha.String(), Size: s.size, Restarts: s.restarts,
		ExitCode: s.exitCode, LastOutput: s.lastOut, Binary: s.cfg.Binary, State: agentapi.StateStopped}
	if p := s.proc; p != nil {
		st.State = p.state
		if p.state == agentapi.StateStarting || p.state == agentapi.StateReady {
			st.PID = p.pid
		}
	}
	return st
}

// Subscribe returns a channel of events, and a function to stop them.
func (s *Supervisor) Subscribe() (<-chan agentapi.Event, func()) {
	c := make(chan agentapi.Event, 64)
	s.mu.Lock()
	st := s.statusLocked()
	c <- agentapi.Event{Type: "status", Time: time.Now(), Status: &st}
	s.subs[c] = struct{}{}
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
	}
}

func (s *Supervisor) emitLocked(e agentapi.Event) {
	e.Time = time.Now()
	for c := range s.subs {
		select {
		case c <- e:
		default:
		}
	}
}

// Logs subscribes to the app's output.
func (s *Supervisor) Logs() (<-chan []byte, func()) { return s.out.subscribe() }
