package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// Debugging (--debug): once the CLI has put a dlv at Config.Delve, the app runs under it:
// `dlv exec --headless --accept-multiclient` of the binary with the app's own arguments,
// listening on a unix socket beside dlv that only the agent reaches; debugger clients come in
// through the control API (PathDebugConnect, authenticated), JSON-RPC and DAP alike, and Delve
// tells them apart by their first byte.
//
// One dlv serves every run of the app: a swap renames the new binary over the old as always,
// then asks Delve to Restart (it kills the old process and starts the file again, with every
// breakpoint it can set in the new binary), so a client connected before the edit keeps its
// connection and its breakpoints.
//
// Who lets the app run after a swap is the subtle part. Delve answers a continue only when the
// app stops, and holds its target lock meanwhile: a Restart waits until the app is halted, and
// a continue that waits for the lock behind another would skip the next stop. So:
//   - the agent lets the app run (its own continue) when no client does: at the start, and after
//     a swap when the run was the agent's or no client is connected;
//   - a DAP client that was running the app runs the new one itself: Delve's DAP session
//     continues again after a halt it did not ask for, and its continue waits behind the
//     Restart, so the stop at its breakpoint in the new binary is reported to it; until its
//     continue arrives (at most clientResumeGrace) the new run waiting at its entry is not
//     reported paused (under load that took longer than the poller's two stops);
//   - a JSON-RPC client (dlv connect) sees the halt as a stop and gets its prompt back: the new
//     binary then waits at its entry until that client continues (the agent reports it paused);
//   - an edit that arrives while a connected client holds the app paused (at a breakpoint,
//     halted) does not cut its inspection short: the binary on disk is replaced at once, and
//     the swap happens when the app runs again (the client continues) or when no client is
//     connected any more.

// debugRun is one dlv process.
type debugRun struct {
	pid  int           // dlv's, also its process group
	gone chan struct{} // closed when dlv has exited
	rpc  *delveRPC     // nil until connected

	// Under Supervisor.mu:
	agentRun    bool // the agent's own continue is in flight: no client runs the app
	agentPaused bool // the agent's own continue ended at a stop: no client took the app over
	swapping    bool // the agent halts and restarts: the stops it sees now are its own
	pending     bool // a swap waits for the app to run again
}

// errNotDebuggable refuses --debug for a command that runs the binary through a script.
var errNotDebuggable = errors.New("cannot run under the debugger")

// ErrNoDebug refuses a dlv to an agent started without --debug.
var ErrNoDebug = errors.New("this agent does not debug: start it with --debug")

// debugOn says whether the app runs under the debugger from its next start.
func (s *Supervisor) debugOn() bool {
	if s.cfg.Delve == "" {
		return false
	}
	_, err := os.Stat(s.cfg.Delve)
	return err == nil
}

// debugSock is where dlv listens: beside it, in a directory only the app's user writes.
func (s *Supervisor) debugSock() string {
	return filepath.Join(filepath.Dir(s.cfg.Delve), ".hotpod-dlv.sock")
}

// debugArgs are the app's own arguments: what follows the binary in the command. `dlv exec`
// runs the binary itself, so a wrapper in front of it (tini, dumb-init) is left out (the agent
// reaps and forwards signals anyway), and a binary named only inside a shell script cannot be
// debugged.
func (s *Supervisor) debugArgs() ([]string, error) {
	argv := s.cfg.Command
	for i, a := range argv {
		if i > 0 && isShellC(argv[i-1]) {
			continue // a script
		}
		if a == s.cfg.Binary {
			return argv[i+1:], nil
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		if p, err := lookPath(a, s.cfg.Env, s.cfg.Dir); err == nil && sameFile(p, s.cfg.Binary) {
			return argv[i+1:], nil
		}
	}
	return nil, fmt.Errorf("%w: the command %q does not name %s as a word of its own (a shell script runs it?): give the binary and its arguments as the command, or drop --debug", errNotDebuggable, argv, s.cfg.Binary)
}

func isShellC(flag string) bool {
	return strings.HasPrefix(flag, "-") && !strings.HasPrefix(flag, "--") && strings.Contains(flag, "c")
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// startDebugLocked starts dlv with the app stopped at its entry; debugLaunch connects to it and
// lets the app run.
func (s *Supervisor) startDebugLocked() error {
	args, err := s.debugArgs()
	if err != nil {
		return err
	}
	sock := s.debugSock()
	os.Remove(sock)
	argv := append([]string{s.cfg.Delve, "exec", "--headless", "--accept-multiclient", "--api-version=2",
		"--listen=unix:" + sock, s.cfg.Binary, "--"}, args...)
	p, err := s.spawnApp(s.cfg.Delve, argv)
	if err != nil {
		return err
	}
	d := &debugRun{pid: p.pid, gone: make(chan struct{})}
	s.dbg = d
	p.dbg, p.launching = d, true
	go s.debugLaunch(d, p, sock)
	return nil
}

// delveLaunchTimeout bounds dlv's start (loading a large binary's DWARF takes seconds).
const delveLaunchTimeout = 2 * time.Minute

func (s *Supervisor) debugLaunch(d *debugRun, p *process, sock string) {
	ctx, cancel := context.WithTimeout(context.Background(), delveLaunchTimeout)
	defer cancel()
	var rpc *delveRPC
	for {
		var err error
		if rpc, err = dialDelve(ctx, sock); err == nil {
			break
		}
		select {
		case <-d.gone:
			return // dlv ended: reported as the run's end
		case <-ctx.Done():
			fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: dlv did not listen on %s within %v: %v\n", sock, delveLaunchTimeout, err)
			_ = syscall.Kill(-d.pid, syscall.SIGKILL)
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	st, err := rpc.state(ctx, false)
	if err != nil {
		rpc.Close()
		fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: dlv: %v\n", err)
		_ = syscall.Kill(-d.pid, syscall.SIGKILL)
		return
	}
	s.mu.Lock()
	select {
	case <-d.gone:
		s.mu.Unlock()
		rpc.Close()
		return
	default:
	}
	d.rpc = rpc
	p.app = st.Pid
	s.continueLocked(d)
	p.launching = false
	s.startProbeLocked(p)
	s.mu.Unlock()
	go s.debugPoll(d)
}

// startProbeLocked checks run p's readiness (or makes it ready at once without a probe).
func (s *Supervisor) startProbeLocked(p *process) {
	if s.probe == nil {
		s.readyLocked(p)
		return
	}
	go s.runProbe(p.probeCtx, p)
}

// continueLocked lets the app run with the agent's own continue, which answers when it stops.
func (s *Supervisor) continueLocked(d *debugRun) {
	ch, err := d.rpc.commandAsync("continue")
	if err != nil {
		return // the connection broke: dlv is going
	}
	d.agentRun, d.agentPaused = true, false
	go func() {
		a := <-ch
		s.mu.Lock()
		defer s.mu.Unlock()
		d.agentRun = false
		if a.Err == nil && !d.swapping {
			// It stopped (a breakpoint, a panic, a client's halt) or exited. A halt is a client
			// taking the app over; at a breakpoint no client was running it.
			var out struct{ State delveState }
			if json.Unmarshal(a.Result, &out) == nil && out.State.atBreakpoint() {
				d.agentPaused = true
			}
		}
	}()
}

// pollEvery is how often the agent asks Delve whether the app runs.
const pollEvery = 100 * time.Millisecond

// clientResumeGrace bounds how long a new run may wait at its entry for the client that ran
// the old one to resume it (see restartDebug) before the agent reports it paused.
const clientResumeGrace = 3 * time.Second

// debugPoll follows the app's state under dlv d until dlv ends: paused and resumed (reported as
// events, so a stopped app is never taken for one that fails), exited, and the swap that waits
// for the app to run again.
func (s *Supervisor) debugPoll(d *debugRun) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-d.gone:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*pollEvery)
		st, err := d.rpc.state(ctx, true)
		cancel()
		busy := errors.Is(err, context.DeadlineExceeded) // someone holds the target: it runs
		if err != nil && !busy {
			continue // the connection broke: dlv is going, d.gone follows
		}
		s.mu.Lock()
		p := s.proc
		if p == nil || p.dbg != d || d.swapping || p.launching {
			s.mu.Unlock()
			continue
		}
		runSwap := false
		switch {
		case st.Exited && !busy:
			// Delve keeps running; the app ended on its own.
			s.endRunLocked(p, exitCode(st.ExitStatus))
		case st.Running || busy:
			p.stops, p.resumeBy = 0, time.Time{}
			if p.isPaused {
				p.isPaused, p.pausedAt = false, ""
				s.emitLocked(agentapi.Event{Type: agentapi.EventResumed, PID: p.appPID()})
			}
			runSwap = d.pending
		case time.Now().Before(p.resumeBy):
			// Stopped at the entry of a new run that a client's continue is still on its way
			// to (under load, it took more than the two polls that make a pause).
		default:
			// Stopped. Twice in a row: a client setting a breakpoint halts the app for a moment.
			p.stops++
			if p.stops >= 2 && !p.isPaused && (p.state == agentapi.StateStarting || p.state == agentapi.StateReady) {
				p.isPaused, p.pausedAt = true, st.where()
				closeOnce(p.paused)
				s.emitLocked(agentapi.Event{Type: agentapi.EventPaused, PID: p.appPID(), At: p.pausedAt})
			}
			runSwap = d.pending && s.clients.Load() == 0
		}
		s.mu.Unlock()
		if runSwap {
			go s.swapPending(d)
		}
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// exitCode turns Delve's exit status (negative for a signal) into a shell's.
func exitCode(status int) int {
	if status < 0 {
		return 128 - status
	}
	return status
}

// swapPending does the swap that waited for the app to run again.
func (s *Supervisor) swapPending(d *debugRun) {
	s.swap.Lock()
	defer s.swap.Unlock()
	s.mu.Lock()
	still := d.pending && s.dbg == d && !s.shutdown
	s.mu.Unlock()
	if !still {
		return
	}
	fmt.Fprintln(s.cfg.Stderr, "hotpod-agent: the app runs again: swapping in the build that waited while it was paused")
	if _, err := s.restartDebug(d, true); err != nil {
		fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: swap under the debugger: %v\n", err)
	}
}

// restartDebug restarts the app under dlv d with the binary now on disk (see the package
// comment above for who lets it run). Unless now, a swap while a connected client holds the
// app paused waits (pending). It returns the new run, or the current one when the swap waits.
func (s *Supervisor) restartDebug(d *debugRun, now bool) (*process, error) {
	s.mu.Lock()
	old := s.proc
	if !now && old != nil && old.isPaused && !d.agentPaused && s.clients.Load() > 0 {
		d.pending = true
		s.mu.Unlock()
		fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: the app is paused in the debugger at %s: the new build starts when it runs again\n", old.pausedAt)
		return old, nil
	}
	d.swapping = true
	// The clients running the app go on running it in the new process (see debugtunnel.go);
	// when none does, the agent lets it run.
	var runners []debugClient
	for t := range s.tunnels {
		if t.runs() {
			runners = append(runners, t)
			t.hold(old.appPID())
		}
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), delveLaunchTimeout)
	defer cancel()
	gone, err := s.delveRestart(ctx, d)
	var st delveState
	if err == nil {
		st, err = d.rpc.state(ctx, false)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d.swapping, d.pending, d.agentPaused = false, false, false
	for _, t := range runners {
		t.release()
	}
	if err != nil {
		return nil, fmt.Errorf("restart under the debugger: %w", err)
	}
	if old != nil {
		old.stopped = true
		s.endRunLocked(old, 0)
	}
	p := s.newRunLocked(d.pid)
	p.dbg, p.app = d, st.Pid
	s.restarts++
	for _, g := range gone {
		fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: breakpoint %s: not set in the new build\n", g)
	}
	if len(runners) == 0 {
		s.continueLocked(d)
	} else {
		p.resumeBy = time.Now().Add(clientResumeGrace)
	}
	s.startProbeLocked(p)
	return p, nil
}

// delveRestart asks Delve to Restart, halting the app until the Restart gets Delve's target
// lock: a running app holds it, and a DAP client that runs it resumes it after each halt it did
// not ask for (Go's mutex hands the lock to the waiting Restart once it has waited a while).
func (s *Supervisor) delveRestart(ctx context.Context, d *debugRun) ([]string, error) {
	ch, err := d.rpc.send("Restart", map[string]any{})
	if err != nil {
		return nil, err
	}
	halt := time.NewTimer(10 * time.Millisecond)
	defer halt.Stop()
	for {
		select {
		case a := <-ch:
			c := make(chan rpcAnswer, 1)
			c <- a
			return restartAnswer(ctx, c)
		case <-halt.C:
			_, _ = d.rpc.commandAsync("halt")
			halt.Reset(200 * time.Millisecond)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// delveGoneLocked forgets dlv d, which has exited.
func (s *Supervisor) delveGoneLocked(d *debugRun) {
	select {
	case <-d.gone:
		return
	default:
	}
	close(d.gone)
	if d.rpc != nil {
		d.rpc.Close()
	}
	if s.dbg == d {
		s.dbg = nil
	}
}

// stopDebug ends dlv d and the app under it: Delve kills the app as it detaches; whatever is
// left of either process group is killed.
func (s *Supervisor) stopDebug(d *debugRun, app int) {
	if d.rpc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = d.rpc.detach(ctx, true)
		cancel()
	}
	if app > 0 {
		_ = syscall.Kill(-app, syscall.SIGKILL)
	}
}

// appPID is the app's own process: under the debugger, dlv's child.
func (p *process) appPID() int {
	if p.dbg != nil {
		return p.app
	}
	return p.pid
}

func (s *Supervisor) debugStatusLocked() *agentapi.DebugStatus {
	if s.cfg.Delve == "" {
		return nil
	}
	ds := &agentapi.DebugStatus{Clients: int(s.clients.Load())}
	if s.delve != (delta.Hash{}) {
		ds.Delve = s.delve.String()
	}
	if d := s.dbg; d != nil {
		ds.Active = d.rpc != nil
		ds.SwapPending = d.pending
	}
	if p := s.proc; p != nil && p.isPaused {
		ds.At = p.pausedAt
	}
	if s.delve != (delta.Hash{}) {
		if _, err := s.debugArgs(); err != nil {
			ds.Error = err.Error()
		}
	}
	return ds
}

// PutDelve writes the dlv read from r to Config.Delve if its SHA-256 is sum (a new file beside
// it, synced, renamed over it) and runs the app under it: a restart, unless it runs under this
// very dlv already.
func (s *Supervisor) PutDelve(sum delta.Hash, r io.Reader, p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	if s.cfg.Delve == "" {
		return agentapi.UpdateResult{}, ErrNoDebug
	}
	if _, err := s.debugArgs(); err != nil {
		return agentapi.UpdateResult{}, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	dir, name := filepath.Split(s.cfg.Delve)
	f, err := os.CreateTemp(dir, "."+name+".hotpod-new-*")
	if err != nil {
		return agentapi.UpdateResult{}, s.delveErr(err)
	}
	fail := func(err error) (agentapi.UpdateResult, error) {
		f.Close()
		os.Remove(f.Name())
		return agentapi.UpdateResult{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, MaxFile+1))
	switch {
	case err != nil && isNoSpace(err):
		return fail(s.delveErr(err))
	case err != nil:
		return fail(fmt.Errorf("%w: dlv: reading it failed after %d bytes: %w", ErrBadFile, n, err))
	case n > MaxFile:
		return fail(fmt.Errorf("%w: dlv is larger than %d bytes", ErrBadFile, int64(MaxFile)))
	}
	if got := delta.Hash(h.Sum(nil)); got != sum {
		return fail(fmt.Errorf("%w: dlv: got %d bytes with SHA-256 %.12s, the request says %.12s (truncated or corrupt)", ErrBadFile, n, got, sum))
	}
	for _, step := range []func() error{func() error { return f.Chmod(0o755) }, f.Sync, f.Close} {
		if err := step(); err != nil {
			return fail(s.delveErr(err))
		}
	}
	s.swap.Lock()
	defer s.swap.Unlock()
	s.mu.Lock()
	same := s.delve == sum && s.dbg != nil
	s.mu.Unlock()
	if same {
		os.Remove(f.Name())
		return agentapi.UpdateResult{Status: s.Status()}, nil
	}
	if err := os.Rename(f.Name(), s.cfg.Delve); err != nil {
		os.Remove(f.Name())
		return agentapi.UpdateResult{}, s.delveErr(err)
	}
	s.mu.Lock()
	s.delve = sum
	s.mu.Unlock()
	return s.restart(p)
}

func (s *Supervisor) delveErr(err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w for dlv in %s: free space or give the volume more", ErrNoSpace, filepath.Dir(s.cfg.Delve))
	}
	return fmt.Errorf("put dlv at %s: %w", s.cfg.Delve, err)
}

// DebugConn opens a connection to the dlv the app runs under, counted among the clients while
// it is open (see Close of the answer). ErrNotDebugging when there is none yet.
func (s *Supervisor) DebugConn() (net.Conn, error) {
	s.mu.Lock()
	d := s.dbg
	s.mu.Unlock()
	if d == nil || d.rpc == nil {
		return nil, ErrNotDebugging
	}
	c, err := net.Dial("unix", s.debugSock())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotDebugging, err)
	}
	s.clients.Add(1)
	return &countedConn{Conn: c, s: s}, nil
}

// ErrNotDebugging says the app does not run under the debugger (yet).
var ErrNotDebugging = errors.New("the app does not run under the debugger (yet)")

type countedConn struct {
	net.Conn
	s    *Supervisor
	done bool
}

func (c *countedConn) Close() error {
	c.s.mu.Lock()
	if !c.done {
		c.done = true
		c.s.clients.Add(-1)
	}
	c.s.mu.Unlock()
	return c.Conn.Close()
}

func closeWrite(c net.Conn) {
	type cw interface{ CloseWrite() error }
	if x, ok := c.(cw); ok {
		_ = x.CloseWrite()
		return
	}
	if cc, ok := c.(*countedConn); ok {
		closeWrite(cc.Conn)
		return
	}
	_ = c.Close()
}
