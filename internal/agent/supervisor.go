// Package agent is the supervisor that runs as a dev container's entrypoint: it starts the app,
// passes its output and exit code through, swaps in new binaries sent by the hotpod CLI and
// restarts the app in place, syncs files into a directory the app reads, and reports what
// happened over a small control API (server.go).
//
// Standard library plus the zstd decoder only: it is compiled from source for every node's
// platform (see agentsrc.go) and runs in any image, scratch included.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// Config says what the agent supervises and how.
type Config struct {
	// Command is the app's argv, as the container would run it: Command[0] is resolved through
	// the PATH of Env (as runc does), so a wrapper (sh -c, tini, dumb-init) or a name found on
	// PATH runs as it would without the agent.
	Command []string
	// Binary is the file updates replace (default: Command[0] resolved). The command may run it
	// through a wrapper; a restart restarts the whole command.
	Binary string
	// Seed is the image's binary, copied to Binary at start unless Binary holds the binary the
	// agent last put there (a restarted container keeps its emptyDir and the newest binary; see
	// swapIn for how a binary a node crash tore is told apart).
	Seed string
	Env  []string
	Dir  string
	// StopSignal asks the app to exit; Grace bounds how long it may take when the agent shuts
	// down (and for restarts under StopGraceful), after which its process group is killed.
	StopSignal syscall.Signal
	Grace      time.Duration
	// StopPolicy says how a restart stops the old process (default StopFast).
	StopPolicy StopPolicy
	// Probe is the readiness check (nil: ready once started).
	Probe *agentapi.Probe
	// SyncDir is where PUT /v1/files writes ("" refuses it).
	SyncDir string
	// Delve is where the dlv that PUT /v1/debug/dlv delivers is kept ("" refuses it). Once it
	// is there, the app runs under it (`dlv exec` of Binary with the app's own arguments; see
	// debug.go).
	Delve string
	// Stdout and Stderr receive the app's output as it is written.
	Stdout, Stderr io.Writer
	// ExitWithApp ends Run with the app's exit code when the app exits on its own (a Job's
	// container ends when its work is done); by default the agent stays up for the next binary.
	ExitWithApp bool
	// Reap makes the agent wait for every child of the process (it runs as PID 1 or as a child
	// subreaper and inherits orphans), not only for the processes it started.
	Reap bool
}

// Supervisor runs one app process at a time.
type Supervisor struct {
	cfg   Config
	out   *output
	probe checker

	swap sync.Mutex // one swap or restart at a time; never held while a body streams in

	reapMu  sync.Mutex // held from fork to registration, so the reaper finds every waiter
	waiters map[int]chan syscall.WaitStatus

	mu       sync.Mutex
	swaps    int           // binaries swapped in: names each swap's old binary
	freeing  chan struct{} // closed once the last swap's old binary is removed (nil: none yet)
	proc     *process
	sha      delta.Hash
	size     int64
	restarts int
	exitCode *int
	lastOut  []string
	shutdown bool
	subs     map[chan agentapi.Event]struct{}

	dbg     *debugRun    // the dlv the app runs under; nil when it runs on its own
	delve   delta.Hash   // of the dlv at Config.Delve (zero when there is none)
	clients atomic.Int32 // debugger connections open through the agent
	tunnels map[debugClient]struct{}
}

// process is one run of the app.
type process struct {
	pid      int // also its process group; under the debugger, dlv's (one dlv serves every run)
	start    time.Time
	readyAt  time.Time
	state    agentapi.State
	stopped  bool          // the agent asked it to stop
	exited   chan struct{} // closed when it has been reaped and its output drained
	ready    chan struct{} // closed when the probe passed
	hopeless chan struct{} // closed when the probe can never pass
	cancel   context.CancelFunc
	probeCtx context.Context // ends with the run
	code     int
	drained  sync.WaitGroup

	// Under the debugger (see debug.go): dlv's session, the app's own pid, and whether the app
	// is stopped in the debugger (at a breakpoint, halted by a client, at its entry).
	dbg       *debugRun
	app       int
	launching bool          // dlv is loading the binary; the app has not run yet
	paused    chan struct{} // closed when this run first pauses in the debugger
	isPaused  bool
	pausedAt  string
	stops     int // stopped states seen in a row by the debugger's poller
	// resumeBy: a client that ran the app before a swap resumes it in this run (restartDebug);
	// until it does, or until then, the stop at the entry is not a pause.
	resumeBy time.Time

	probeErr      string
	probeFailures int
	probeReported time.Time

	ooms int64 // the cgroup's OOM kill count when the run started (oomKills)
}

// New checks the binary and returns a supervisor that has not started the app yet.
func New(cfg Config) (*Supervisor, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("no command to run: pass it after --")
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Binary == "" {
		path, err := lookPath(cfg.Command[0], cfg.Env, cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("the app binary: %w (or name the file updates replace with --binary)", err)
		}
		cfg.Binary = path
	}
	if cfg.StopSignal == 0 {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.StopPolicy == "" {
		cfg.StopPolicy = StopFast
	}
	if _, err := ParseStopPolicy(string(cfg.StopPolicy)); err != nil {
		return nil, err
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	s := &Supervisor{cfg: cfg, out: newOutput(20), subs: map[chan agentapi.Event]struct{}{}, tunnels: map[debugClient]struct{}{},
		waiters: map[int]chan syscall.WaitStatus{}}
	if cfg.Probe != nil {
		c, err := newChecker(*cfg.Probe, s)
		if err != nil {
			return nil, err
		}
		s.probe = c
	}
	removeLeftovers(cfg.Binary)
	sum, size, err := trustBinary(cfg)
	if err != nil {
		return nil, err
	}
	s.sha, s.size = sum, size
	if cfg.Delve != "" {
		removeLeftovers(cfg.Delve)
		if sum, _, err := hashFile(cfg.Delve); err == nil {
			s.delve = sum // a restarted container keeps its emptyDir, and its dlv
		}
	}
	return s, nil
}

// hashFile streams path through SHA-256: a 70 MB binary is never held in memory.
func hashFile(path string) (delta.Hash, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return delta.Hash{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return delta.Hash(h.Sum(nil)), n, err
}

// removeLeftovers removes what an agent killed in the middle of an update left beside the
// binary (the emptyDir outlives the container): half-written binaries, old binaries whose
// removal had not run. The binary's record stays.
func removeLeftovers(binary string) {
	matches, _ := filepath.Glob(beside(binary, "*"))
	for _, m := range matches {
		if m != recordName(binary) {
			os.Remove(m)
		}
	}
}

// Start starts the app and, when Config.Reap is set, the zombie reaper. ctx bounds the
// reaper's life. A command that cannot be started at all is reported like a crash (state
// exited, code 127 or 126, the reason as its output): the agent stays up for the next binary.
func (s *Supervisor) Start(ctx context.Context) error {
	if s.cfg.Reap {
		// Subscribed before the first child exists: a SIGCHLD before the reaper runs is kept.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGCHLD)
		go s.reap(ctx, sig)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(); err != nil {
		s.startFailedLocked(err)
	}
	return nil
}

func (s *Supervisor) startLocked() error {
	if s.shutdown {
		return errors.New("the agent is shutting down")
	}
	if s.debugOn() {
		return s.startDebugLocked()
	}
	path, err := lookPath(s.cfg.Command[0], s.cfg.Env, s.cfg.Dir)
	if err != nil {
		return err
	}
	p, err := s.spawnApp(path, s.cfg.Command)
	if err != nil {
		return err
	}
	if s.probe == nil {
		s.readyLocked(p)
	} else {
		go s.runProbe(p.probeCtx, p)
	}
	return nil
}

// spawnApp starts argv (the app, or dlv running it) in its own process group with its output
// going through the agent, makes it the current run and reports it started.
func (s *Supervisor) spawnApp(path string, argv []string) (*process, error) {
	rOut, wOut, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	rErr, wErr, err := os.Pipe()
	if err != nil {
		rOut.Close()
		wOut.Close()
		return nil, err
	}
	s.out.reset() // the last lines are this run's
	pid, done, err := s.spawn(path, argv, &os.ProcAttr{
		Dir:   s.cfg.Dir,
		Env:   s.cfg.Env,
		Files: []*os.File{os.Stdin, wOut, wErr},
		Sys:   appAttr(),
	})
	wOut.Close()
	wErr.Close()
	if err != nil {
		rOut.Close()
		rErr.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := s.newRunLocked(pid)
	p.drained.Add(2)
	go func() { defer p.drained.Done(); s.out.copy(s.cfg.Stdout, rOut); rOut.Close() }()
	go func() { defer p.drained.Done(); s.out.copy(s.cfg.Stderr, rErr); rErr.Close() }()
	go func() { s.exited(p, <-done) }()
	return p, nil
}

// newRunLocked makes a new run of the app (process pid) the current one and reports it started.
func (s *Supervisor) newRunLocked(pid int) *process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{pid: pid, start: time.Now(), state: agentapi.StateStarting,
		exited: make(chan struct{}), ready: make(chan struct{}), hopeless: make(chan struct{}), paused: make(chan struct{}),
		cancel: cancel, probeCtx: ctx, ooms: oomKills()}
	s.proc = p
	s.exitCode, s.lastOut = nil, nil
	s.emitLocked(agentapi.Event{Type: agentapi.EventStarted, PID: p.appPID(), SHA256: s.sha.String()})
	return p
}

// startFailedLocked reports a command that could not be started as a process that exited at
// once, with the shell's codes: 127 not found, 126 not executable.
func (s *Supervisor) startFailedLocked(err error) {
	code := 126
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, errNotFound) {
		code = 127
	}
	msg := "hotpod-agent: " + err.Error()
	fmt.Fprintln(s.cfg.Stderr, msg)
	p := &process{start: time.Now(), state: agentapi.StateExited, exited: make(chan struct{}),
		ready: make(chan struct{}), hopeless: make(chan struct{}), paused: make(chan struct{}), cancel: func() {}, code: code}
	close(p.exited)
	s.proc = p
	s.exitCode, s.lastOut = &code, []string{msg}
	s.emitLocked(agentapi.Event{Type: agentapi.EventExited, ExitCode: &code, LastOutput: s.lastOut})
}

// spawn starts a process and returns its pid and a channel that receives its wait status. As
// PID 1 the reaper waits for every child; the process is registered before the reaper can see
// it exit.
func (s *Supervisor) spawn(path string, argv []string, attr *os.ProcAttr) (int, <-chan syscall.WaitStatus, error) {
	done := make(chan syscall.WaitStatus, 1)
	if !s.cfg.Reap {
		p, err := os.StartProcess(path, argv, attr)
		if err != nil {
			return 0, nil, err
		}
		go func() {
			st, err := p.Wait()
			if err != nil {
				done <- syscall.WaitStatus(0xff00) // exit code 255: unknown
				return
			}
			done <- st.Sys().(syscall.WaitStatus)
		}()
		return p.Pid, done, nil
	}
	s.reapMu.Lock()
	defer s.reapMu.Unlock()
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	_ = p.Release() // the reaper waits for it
	s.waiters[pid] = done
	return pid, done, nil
}

// reap waits for every child (the agent is PID 1 or a subreaper and inherits orphans) and hands
// the status of the processes it started to their waiters.
func (s *Supervisor) reap(ctx context.Context, sig chan os.Signal) {
	defer signal.Stop(sig)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			s.reapMu.Lock()
			c, ok := s.waiters[pid]
			delete(s.waiters, pid)
			s.reapMu.Unlock()
			if ok {
				c <- ws
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
	}
}

// exited records the end of the app process p.
func (s *Supervisor) exited(p *process, ws syscall.WaitStatus) {
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
	if d := p.dbg; d != nil {
		// dlv itself ended: so did the run of the app it held.
		s.delveGoneLocked(d)
		if s.proc != nil && s.proc.dbg == d {
			p = s.proc
		}
	}
	s.endRunLocked(p, code)
}

// endRunLocked records the end of run p with its exit code: stopped when the agent asked for
// it, else exited on its own (with its last lines of output).
func (s *Supervisor) endRunLocked(p *process, code int) {
	select {
	case <-p.exited:
		return // ended before
	default:
	}
	p.cancel()
	p.code = code
	ran := time.Since(p.start)
	current := s.proc == p
	if current {
		s.exitCode = &code
	}
	if p.stopped || s.shutdown {
		p.state = agentapi.StateStopped
		s.emitLocked(agentapi.Event{Type: agentapi.EventStopped, PID: p.appPID(), ExitCode: &code, AfterMS: agentapi.Ms(ran)})
	} else {
		p.state = agentapi.StateExited
		last := s.out.last()
		if code == 128+int(syscall.SIGKILL) && p.ooms >= 0 && oomKills() > p.ooms {
			last = append(last, oomKilledHint)
		}
		if current {
			s.lastOut = last
		}
		s.emitLocked(agentapi.Event{Type: agentapi.EventExited, PID: p.appPID(), ExitCode: &code, AfterMS: agentapi.Ms(ran), LastOutput: last})
	}
	close(p.exited)
}

func (s *Supervisor) readyLocked(p *process) {
	p.state = agentapi.StateReady
	p.readyAt = time.Now()
	p.probeErr, p.probeFailures = "", 0
	close(p.ready)
	s.emitLocked(agentapi.Event{Type: agentapi.EventReady, PID: p.appPID(), AfterMS: agentapi.Ms(time.Since(p.start))})
}

// runProbe checks readiness from right after the start until it passes or the process ends.
// Failures are counted and reported as they happen: the first at once, then at most every
// agentapi.ProbeReportEvery, so a probe that can never pass is seen at once.
func (s *Supervisor) runProbe(ctx context.Context, p *process) {
	for i := 0; ; i++ {
		err := s.probe.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		permanent := errors.Is(err, errProbeHopeless)
		s.mu.Lock()
		if err == nil {
			if p.state == agentapi.StateStarting {
				s.readyLocked(p)
			}
			s.mu.Unlock()
			return
		}
		if p.isPaused || p.launching {
			// Stopped in the debugger (or not yet let run by it): it cannot answer, and that is
			// not news. Keep checking: it answers once it runs again.
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		p.probeFailures++
		p.probeErr = s.probe.String() + " → " + err.Error()
		if p.probeFailures == 1 || time.Since(p.probeReported) >= agentapi.ProbeReportEvery {
			p.probeReported = time.Now()
			s.emitLocked(agentapi.Event{Type: agentapi.EventProbeFailed, PID: p.appPID(), Probe: s.probe.String(),
				Error: p.probeErr, Failures: p.probeFailures, Permanent: permanent})
		}
		if permanent {
			select {
			case <-p.hopeless:
			default:
				close(p.hopeless)
			}
		}
		s.mu.Unlock()
		wait := pollInterval(i)
		if permanent {
			wait = time.Second // it may still appear (a script the app writes), but do not spin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// pollInterval grows from a tight 1 ms right after start (the fast path of a small server) to
// 50 ms for apps that take long to come up.
func pollInterval(attempt int) time.Duration {
	d := time.Millisecond << min(attempt/20, 6)
	return min(d, 50*time.Millisecond)
}

// Signal passes sig to the app.
func (s *Supervisor) Signal(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil && p.appPID() > 0 {
		_ = syscall.Kill(p.appPID(), sig)
	}
}

// Shutdown stops the app with sig (the configured stop signal when 0), giving it the grace
// period, and returns its exit code: the code the agent itself should exit with. It never waits
// for an update in progress (a stalled upload must not hold up the kubelet's SIGTERM); an update
// that finishes afterwards starts nothing.
func (s *Supervisor) Shutdown(sig syscall.Signal) int {
	s.mu.Lock()
	s.shutdown = true
	p := s.proc
	s.mu.Unlock()
	if sig == 0 {
		sig = s.cfg.StopSignal
	}
	if p != nil {
		if p.dbg != nil {
			s.stopDebug(p.dbg, p.app)
		}
		s.stop(p, StopGraceful, sig, s.cfg.Grace)
	}
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
	if s.probe != nil {
		st.Probe = s.probe.String()
	}
	if p := s.proc; p != nil {
		st.State = p.state
		if p.state == agentapi.StateStarting || p.state == agentapi.StateReady {
			st.PID = p.appPID()
		}
		st.ProbeError, st.ProbeFailures = p.probeErr, p.probeFailures
		if p.isPaused && (p.state == agentapi.StateStarting || p.state == agentapi.StateReady) {
			st.State = agentapi.StatePaused
		}
	}
	st.Debug = s.debugStatusLocked()
	return st
}

// Subscribe returns a channel of events, and a function to stop them.
func (s *Supervisor) Subscribe() (<-chan agentapi.Event, func()) {
	c := make(chan agentapi.Event, 64)
	s.mu.Lock()
	st := s.statusLocked()
	c <- agentapi.Event{Type: agentapi.EventStatus, Time: time.Now(), Status: &st}
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

// errNotFound says a command is not on PATH (or not there at all).
var errNotFound = errors.New("executable file not found")

// defaultPath is the PATH a container gets when its image sets none (runc's and Docker's).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath resolves a command's argv[0] as runc does: a name with a slash is a path (relative to
// dir), any other is searched in the PATH of env.
func lookPath(file string, env []string, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		return p, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var denied error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && errors.Is(err, syscall.EACCES) {
			denied = fmt.Errorf("%s: %w", p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%q: %w in $PATH (%s)", file, errNotFound, path)
}

// executable says whether p is a file the process may execute.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (no such file)", errNotFound)
		}
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory: %w", syscall.EACCES)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (mode %v): %w", fi.Mode().Perm(), syscall.EACCES)
	}
	return nil
}
