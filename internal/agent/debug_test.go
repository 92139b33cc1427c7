package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-delve/delve/service/api"
	"github.com/go-delve/delve/service/rpc2"
	"github.com/google/go-dap"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/dlvbin"
	"github.com/hotpod/hotpod/internal/testutil"
)

// The debugger tests run a real dlv (built from hotpod's pin, as hotpod dev --debug does, and
// cached in the user's cache dir) and a debuggee built as --debug builds (-N -l, DWARF, no
// -trimpath), in two versions.
var debugBins = sync.OnceValues(func() (debugBinaries, error) {
	var b debugBinaries
	dir, err := dlvbin.DefaultDir()
	if err != nil {
		return b, err
	}
	if b.dlv, err = (&dlvbin.Cache{Dir: dir}).Path(context.Background(), agentbin.Host()); err != nil {
		return b, err
	}
	out, err := os.MkdirTemp("", "agent-debug-test-")
	if err != nil {
		return b, err
	}
	b.v1, b.v2 = filepath.Join(out, "debuggee-v1"), filepath.Join(out, "debuggee-v2")
	for _, v := range []struct{ out, version string }{{b.v1, "v1"}, {b.v2, "v2"}} {
		cmd := exec.Command("go", "build", "-gcflags=all=-N -l", "-ldflags=-X main.version="+v.version, "-o", v.out, "./testdata/debuggee")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("build the debuggee: %v: %s", err, o)
		}
	}
	src, _ := filepath.Abs("testdata/debuggee/main.go")
	b.src = src
	text, err := os.ReadFile(src)
	if err != nil {
		return b, err
	}
	for i, l := range strings.Split(string(text), "\n") {
		if strings.Contains(l, "// BREAK") {
			b.line = i + 1
		}
	}
	return b, nil
})

type debugBinaries struct {
	dlv, v1, v2 string
	src         string // the debuggee's main.go, as its DWARF names it
	line        int    // the line in handle the tests break on
}

type debugFixture struct {
	*fixture
	bins debugBinaries
	dlv  string // where the agent keeps dlv
	addr string // a local port that reaches the debugger through the control API
}

// startDebug runs debuggee v1 under a supervisor started with --debug, hands it dlv, and waits
// until the app is ready under the debugger.
func startDebug(t *testing.T) *debugFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Delve")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the agent runs on Linux")
	}
	bins, err := debugBins()
	if err != nil {
		t.Fatal(err)
	}
	// A short directory: dlv's unix socket lives beside dlv, and socket paths are short.
	dir, err := os.MkdirTemp("", "hd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &debugFixture{bins: bins, dlv: filepath.Join(dir, ".hotpod-dlv")}
	f.fixture = startWith(t, dir, func(c *agent.Config) {
		copyFile(t, bins.v1, filepath.Join(dir, "app"))
		c.Delve = f.dlv
	})
	if st := f.waitReady(t); st.State != agentapi.StateReady || st.Debug == nil || st.Debug.Active {
		t.Fatalf("before dlv came: %+v (debug %+v), want ready, not under the debugger", st, st.Debug)
	}
	res, err := f.client.PutDelve(t.Context(), read(t, bins.dlv), agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != agentapi.StateReady || res.Debug == nil || !res.Debug.Active {
		t.Fatalf("after PUT dlv: %+v (debug %+v; output %s), want ready under the debugger", res.Status, res.Debug, f.out)
	}
	if got := f.get(t); got != "hello v1" {
		t.Fatalf("app answers %q, want hello v1", got)
	}
	f.addr = debugTunnel(t, f.client)
	return f
}

// debugTunnel serves the debugger on a local port, one PathDebugConnect per connection: what
// hotpod dev --debug does on the developer's machine.
func debugTunnel(t *testing.T, c *agentapi.Client) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				up, err := c.DebugConnect(context.Background())
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// getAsync GETs / of the app in the background (it blocks while the app is stopped).
func (f *debugFixture) getAsync() <-chan string {
	ch := make(chan string, 1)
	go func() {
		c := http.Client{Timeout: 2 * time.Minute}
		resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(f.port))
		if err != nil {
			ch <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- string(b)
	}()
	return ch
}

func (f *debugFixture) update(t *testing.T, bin string) agentapi.UpdateResult {
	t.Helper()
	patch := delta.EncodeRaw(read(t, bin))
	res, err := f.client.Update(t.Context(), patch, agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func recv[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("no %s within a minute", what)
	}
	panic("unreachable")
}

// TestDebugSwapWithoutClient: under the debugger with no client, a swap runs the new binary at
// once (the agent lets it run), and the status says so.
func TestDebugSwapWithoutClient(t *testing.T) {
	f := startDebug(t)
	res := f.update(t, f.bins.v2)
	if res.State != agentapi.StateReady || !res.Debug.Active {
		t.Fatalf("after the swap: %+v (debug %+v), want ready under the debugger", res.Status, res.Debug)
	}
	if got := f.get(t); got != "hello v2" {
		t.Fatalf("app answers %q, want hello v2", got)
	}
}

// TestDebugJSONRPCAcrossSwap: a dlv connect client (Delve's own rpc2 client) keeps its
// connection and its breakpoint across a swap, and the breakpoint stops the new binary; while
// it is stopped the agent reports the app paused, not failing.
func TestDebugJSONRPCAcrossSwap(t *testing.T) {
	f := startDebug(t)
	events, stop := f.sup.Subscribe()
	defer stop()
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := rpc2.NewClientFromConn(conn)
	defer c.Disconnect(false)
	if _, err := c.Halt(); err != nil { // the agent runs the app: take it over
		t.Fatal(err)
	}
	bp, err := c.CreateBreakpoint(&api.Breakpoint{File: f.bins.src, Line: f.bins.line})
	if err != nil {
		t.Fatal(err)
	}
	// stopped checks that the client's run ended at its breakpoint in handle, in the binary of
	// version want, reported paused by the agent; then lets it run and checks the answer.
	states := c.Continue()
	stopped := func(want string) {
		t.Helper()
		body := f.getAsync()
		st := recv(t, "stop at the breakpoint", states)
		if st.Err != nil || st.CurrentThread == nil || st.CurrentThread.Breakpoint == nil || st.CurrentThread.Breakpoint.ID != bp.ID {
			t.Fatalf("state after the GET: %+v (err %v), want a stop at breakpoint %d", st.CurrentThread, st.Err, bp.ID)
		}
		if st.CurrentThread.Line != f.bins.line || st.CurrentThread.Function.Name() != "main.handle" {
			t.Fatalf("stopped at %s:%d %s, want line %d of main.handle", st.CurrentThread.File, st.CurrentThread.Line, st.CurrentThread.Function.Name(), f.bins.line)
		}
		// Paused in the debugger: reported as such, and the status says where.
		waitEvent(t, events, agentapi.EventPaused)
		status, err := f.client.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if status.State != agentapi.StatePaused || !strings.Contains(status.Debug.At, "main.handle") {
			t.Fatalf("status while stopped: %s at %q, want paused in main.handle", status.State, status.Debug.At)
		}
		v, err := c.EvalVariable(api.EvalScope{GoroutineID: -1}, "version", api.LoadConfig{MaxStringLen: 64})
		if err != nil || v.Value != strings.TrimPrefix(want, "hello ") {
			t.Fatalf("version at the breakpoint = %v, %v; want %s", v, err, want)
		}
		states = c.Continue()
		if got := recv(t, "the answer", body); got != want {
			t.Fatalf("app answered %q, want %q", got, want)
		}
		waitEvent(t, events, agentapi.EventResumed)
	}
	stopped("hello v1")

	// The edit, while the client's continue is in flight: it goes on in the new binary.
	res := f.update(t, f.bins.v2)
	if res.State != agentapi.StateReady || res.SHA256 != delta.Sum(read(t, f.bins.v2)).String() {
		t.Fatalf("after the swap: %s running %.12s (output %s), want ready, running v2", res.State, res.SHA256, f.out)
	}
	// The continue the client sent before the edit answers with the stop in the new binary, at
	// the breakpoint it set before (same ID: Delve kept it across the Restart).
	stopped("hello v2")
}

// TestDebugDAPAcrossSwap: an IDE's session (DAP, remote attach) keeps its connection and its
// breakpoint across a swap: the app runs on after the swap without the client doing anything,
// and the stop at the breakpoint in the new binary is reported to it.
func TestDebugDAPAcrossSwap(t *testing.T) {
	f := startDebug(t)
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDAP(t, conn)
	const wait = time.Minute
	d.Attach(wait)
	bps := d.SetBreakpoints(f.bins.src, []int{f.bins.line}, wait)
	if len(bps) != 1 || !bps[0].Verified {
		t.Fatalf("setBreakpoints: %+v, want one verified", bps)
	}
	d.ConfigurationDone(wait)
	hit := func(want string) {
		t.Helper()
		body := f.getAsync()
		ev := d.Stopped(wait)
		if ev.Body.Reason != "breakpoint" || len(ev.Body.HitBreakpointIds) != 1 || ev.Body.HitBreakpointIds[0] != bps[0].Id {
			t.Fatalf("stopped: %+v, want breakpoint %d", ev.Body, bps[0].Id)
		}
		if fr := d.TopFrame(ev.Body.ThreadId, wait); fr.Line != f.bins.line || !strings.HasSuffix(fr.Name, "handle") {
			t.Fatalf("top frame %s line %d, want handle line %d", fr.Name, fr.Line, f.bins.line)
		}
		d.Continue(ev.Body.ThreadId, wait)
		if got := recv(t, "the answer", body); got != want {
			t.Fatalf("app answered %q, want %q", got, want)
		}
	}
	hit("hello v1")
	res := f.update(t, f.bins.v2)
	if res.State != agentapi.StateReady {
		t.Fatalf("after the swap: %s (debug %+v; output %s), want ready: the DAP session runs the new binary", res.State, res.Debug, f.out)
	}
	hit("hello v2")
	_ = dap.Message(nil)
}

// TestDebugEditWhilePaused: an edit that arrives while a client holds the app at a breakpoint
// waits: the stopped request finishes with the old code when the client continues, then the
// new build runs with the breakpoint.
func TestDebugEditWhilePaused(t *testing.T) {
	f := startDebug(t)
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.NewDAP(t, conn)
	const wait = time.Minute
	d.Attach(wait)
	bps := d.SetBreakpoints(f.bins.src, []int{f.bins.line}, wait)
	d.ConfigurationDone(wait)
	body := f.getAsync()
	ev := d.Stopped(wait)
	waitStatus(t, f.client, func(st agentapi.Status) bool { return st.State == agentapi.StatePaused })
	t0 := time.Now()
	res := f.update(t, f.bins.v2)
	if res.State != agentapi.StatePaused || !res.Debug.SwapPending {
		t.Fatalf("update while paused: %s (debug %+v), want paused with the swap pending", res.State, res.Debug)
	}
	if time.Since(t0) > 30*time.Second {
		t.Fatalf("the update waited %v for a paused app", time.Since(t0))
	}
	d.Continue(ev.Body.ThreadId, wait)
	if got := recv(t, "the answer", body); got != "hello v1" {
		t.Fatalf("the stopped request answered %q, want the old code's hello v1", got)
	}
	waitStatus(t, f.client, func(st agentapi.Status) bool {
		return st.State == agentapi.StateReady && !st.Debug.SwapPending && st.Restarts == 2
	})
	body = f.getAsync()
	ev = d.Stopped(wait)
	if len(ev.Body.HitBreakpointIds) != 1 || ev.Body.HitBreakpointIds[0] != bps[0].Id {
		t.Fatalf("stopped in the new build: %+v, want breakpoint %d", ev.Body, bps[0].Id)
	}
	d.Continue(ev.Body.ThreadId, wait)
	if got := recv(t, "the answer", body); got != "hello v2" {
		t.Fatalf("app answered %q, want hello v2", got)
	}
}

// TestDebugAppExits: the app exiting under the debugger is an exit (code and output), and the
// next swap starts it again under the same dlv.
func TestDebugAppExits(t *testing.T) {
	f := startDebug(t)
	events, stop := f.sup.Subscribe()
	defer stop()
	go http.Get("http://127.0.0.1:" + strconv.Itoa(f.port) + "/exit") //nolint:errcheck // it exits
	e := waitEvent(t, events, agentapi.EventExited)
	if e.ExitCode == nil || *e.ExitCode != 3 || !strings.Contains(strings.Join(e.LastOutput, "\n"), "exiting v1") {
		t.Fatalf("exited event: code %v, output %q; want 3 and the app's last line", e.ExitCode, e.LastOutput)
	}
	res := f.update(t, f.bins.v2)
	if res.State != agentapi.StateReady || !res.Debug.Active {
		t.Fatalf("after the swap: %+v (debug %+v)", res.Status, res.Debug)
	}
	if got := f.get(t); got != "hello v2" {
		t.Fatalf("app answers %q, want hello v2", got)
	}
}

// TestDebugRefusesScript: a binary run by a shell script cannot be put under dlv exec: the
// dlv is refused in one line, and the app keeps running as it was.
func TestDebugRefusesScript(t *testing.T) {
	dir := t.TempDir()
	f := startWith(t, dir, func(c *agent.Config) {
		c.Command = []string{"/bin/sh", "-c", "exec " + filepath.Join(dir, "app")}
		c.Binary = filepath.Join(dir, "app")
		c.Delve = filepath.Join(dir, ".hotpod-dlv")
	})
	f.waitReady(t)
	_, err := f.client.PutDelve(t.Context(), []byte("not dlv"), agentapi.UpdateParams{})
	if err == nil || !strings.Contains(err.Error(), "give the binary and its arguments as the command") {
		t.Fatalf("PUT dlv for a script: %v, want a refusal that says what to do", err)
	}
	if st := f.waitReady(t); st.State != agentapi.StateReady || st.Restarts != 0 {
		t.Fatalf("after the refusal: %s, %d restarts; want the app untouched", st.State, st.Restarts)
	}
}

// TestDebugDelveVerified: a dlv whose bytes do not match its hash is refused and not kept.
func TestDebugDelveVerified(t *testing.T) {
	dir := t.TempDir()
	f := startWith(t, dir, func(c *agent.Config) { c.Delve = filepath.Join(dir, ".hotpod-dlv") })
	f.waitReady(t)
	sum := delta.Hash{1}
	res, err := http.NewRequest(http.MethodPut, f.client.Base+agentapi.PathDebugDelve+"?sha256="+sum.String(), bytes.NewReader([]byte("dlv")))
	if err != nil {
		t.Fatal(err)
	}
	res.Header.Set(agentapi.TokenHeader, "Bearer "+token)
	resp, err := http.DefaultClient.Do(res)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("corrupt dlv answered %d, want 400", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, ".hotpod-dlv")); !os.IsNotExist(err) {
		t.Fatalf("a corrupt dlv was kept: %v", err)
	}
	// Without --debug there is nowhere to put one.
	g := start(t)
	if _, err := g.client.PutDelve(t.Context(), []byte("dlv"), agentapi.UpdateParams{}); err == nil || !strings.Contains(err.Error(), "--debug") {
		t.Fatalf("PUT dlv without --debug: %v", err)
	}
}

func waitEvent(t *testing.T, events <-chan agentapi.Event, typ string) agentapi.Event {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case e := <-events:
			if e.Type == typ {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within a minute", typ)
		}
	}
}

func waitStatus(t *testing.T, c *agentapi.Client, ok func(agentapi.Status) bool) agentapi.Status {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never got there: %+v (debug %+v)", st, st.Debug)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
