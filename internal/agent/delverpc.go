package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
)

// delveRPC is the few calls of Delve's JSON-RPC API v2 (net/rpc/jsonrpc framing: one JSON
// object per request and per answer, matched by id) the agent makes. Written by hand: the agent
// must not import Delve (it is built from source for every node and stays small). Calls may
// overlap: Delve answers a Command only when the target stops, and a halt must get through
// meanwhile.
type delveRPC struct {
	conn net.Conn
	enc  *json.Encoder

	mu      sync.Mutex // guards enc, next, pending, err
	next    uint64
	pending map[uint64]chan rpcAnswer
	err     error // set once the connection broke
}

type rpcAnswer struct {
	Result json.RawMessage
	Err    error
}

// dialDelve opens a JSON-RPC connection to the Delve listening on the unix socket sock.
func dialDelve(ctx context.Context, sock string) (*delveRPC, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	r := &delveRPC{conn: c, enc: json.NewEncoder(c), pending: map[uint64]chan rpcAnswer{}}
	go r.read()
	return r, nil
}

func (r *delveRPC) Close() error { return r.conn.Close() }

func (r *delveRPC) read() {
	dec := json.NewDecoder(bufio.NewReader(r.conn))
	for {
		var a struct {
			ID     uint64          `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  any             `json:"error"`
		}
		if err := dec.Decode(&a); err != nil {
			r.fail(fmt.Errorf("delve connection: %w", err))
			return
		}
		var err error
		if a.Error != nil {
			err = &delveError{msg: fmt.Sprint(a.Error)}
		}
		r.mu.Lock()
		ch := r.pending[a.ID]
		delete(r.pending, a.ID)
		r.mu.Unlock()
		if ch != nil {
			ch <- rpcAnswer{Result: a.Result, Err: err}
		}
	}
}

func (r *delveRPC) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	for id, ch := range r.pending {
		ch <- rpcAnswer{Err: r.err}
		delete(r.pending, id)
	}
	r.conn.Close()
}

// delveError is an error Delve answered (as opposed to a broken connection).
type delveError struct{ msg string }

func (e *delveError) Error() string { return "delve: " + e.msg }

// send writes a request and returns the channel its answer will come on.
func (r *delveRPC) send(method string, params any) (<-chan rpcAnswer, error) {
	ch := make(chan rpcAnswer, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	r.next++
	id := r.next
	r.pending[id] = ch
	req := struct {
		Method string `json:"method"`
		Params [1]any `json:"params"`
		ID     uint64 `json:"id"`
	}{"RPCServer." + method, [1]any{params}, id}
	if err := r.enc.Encode(req); err != nil {
		delete(r.pending, id)
		return nil, fmt.Errorf("delve connection: %w", err)
	}
	return ch, nil
}

// call sends a request and decodes its answer into out (nil: ignore it), until ctx ends.
func (r *delveRPC) call(ctx context.Context, method string, params, out any) error {
	ch, err := r.send(method, params)
	if err != nil {
		return err
	}
	select {
	case a := <-ch:
		if a.Err != nil || out == nil {
			return a.Err
		}
		if err := json.Unmarshal(a.Result, out); err != nil {
			return fmt.Errorf("delve %s: bad answer: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// The parts of Delve's api.DebuggerState the agent reads.
type delveState struct {
	Pid           int          `json:"Pid"`
	Running       bool         `json:"Running"`
	CurrentThread *delveThread `json:"currentThread"`
	Threads       []*delveThread
	Exited        bool   `json:"exited"`
	ExitStatus    int    `json:"exitStatus"`
	StopReason    string `json:"stopReason"`
}

type delveThread struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Function *struct {
		Name string `json:"name"`
	} `json:"function"`
	GoroutineID int64            `json:"goroutineID"`
	Breakpoint  *delveBreakpoint `json:"breakPoint"`
}

type delveBreakpoint struct {
	ID           int    `json:"id"`
	Name         string `json:"name"`
	File         string `json:"file"`
	Line         int    `json:"line"`
	FunctionName string `json:"functionName"`
	Tracepoint   bool   `json:"continue"`
}

// Delve's own breakpoints (negative IDs) that stop the app where it would have died.
const (
	bpUnrecoveredPanic = "unrecovered-panic"
	bpFatalThrow       = "runtime-fatal-throw"
)

// state asks where the target is. nonBlocking answers {Running: true} at once while it runs;
// otherwise the call waits for the target to stop. A target that has exited is reported as
// Exited with its status (Delve answers that with an error).
func (r *delveRPC) state(ctx context.Context, nonBlocking bool) (delveState, error) {
	var out struct{ State *delveState }
	err := r.call(ctx, "State", map[string]bool{"NonBlocking": nonBlocking}, &out)
	if code, ok := exitedStatus(err); ok {
		return delveState{Exited: true, ExitStatus: code}, nil
	}
	if err != nil {
		return delveState{}, err
	}
	if out.State == nil {
		return delveState{}, errors.New("delve State: empty answer")
	}
	return *out.State, nil
}

var exitedRE = regexp.MustCompile(`has exited with status (-?\d+)`)

// exitedStatus reads Delve's "Process 12 has exited with status 3".
func exitedStatus(err error) (int, bool) {
	var de *delveError
	if !errors.As(err, &de) {
		return 0, false
	}
	m := exitedRE.FindStringSubmatch(de.msg)
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	return n, true
}

// commandAsync sends a Command and returns the channel its answer comes on.
func (r *delveRPC) commandAsync(name string) (<-chan rpcAnswer, error) {
	return r.send("Command", map[string]string{"name": name})
}

// restartAnswer waits for the answer to a Restart: it kills the target and starts the file it
// was started from again (the new binary, once renamed over it), keeping the breakpoints that
// can be set in it; it returns the others with Delve's reason.
func restartAnswer(ctx context.Context, ch <-chan rpcAnswer) ([]string, error) {
	select {
	case a := <-ch:
		if a.Err != nil {
			return nil, a.Err
		}
		var out struct {
			DiscardedBreakpoints []struct {
				Breakpoint *delveBreakpoint
				Reason     string
			}
		}
		if err := json.Unmarshal(a.Result, &out); err != nil {
			return nil, fmt.Errorf("delve Restart: bad answer: %w", err)
		}
		var gone []string
		for _, d := range out.DiscardedBreakpoints {
			where := "?"
			if b := d.Breakpoint; b != nil {
				where = fmt.Sprintf("%d at %s:%d", b.ID, b.File, b.Line)
				if b.FunctionName != "" {
					where += " (" + b.FunctionName + ")"
				}
			}
			gone = append(gone, where+": "+d.Reason)
		}
		return gone, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// detach ends the debug session; with kill, the target dies with it.
func (r *delveRPC) detach(ctx context.Context, kill bool) error {
	return r.call(ctx, "Detach", map[string]bool{"Kill": kill}, nil)
}

// where describes a stopped state: "main.go:31 main.handler (breakpoint 1)".
func (st delveState) where() string {
	t := st.CurrentThread
	for _, th := range st.Threads { // the thread at a breakpoint says more than the current one
		if th.Breakpoint != nil && (t == nil || t.Breakpoint == nil) {
			t = th
		}
	}
	if t == nil {
		return "?"
	}
	s := fmt.Sprintf("%s:%d", t.File, t.Line)
	if t.Function != nil && t.Function.Name != "" {
		s += " " + t.Function.Name
	}
	if b := t.Breakpoint; b != nil {
		switch {
		case b.Name == bpUnrecoveredPanic:
			s += " (unrecovered panic)"
		case b.Name == bpFatalThrow:
			s += " (fatal error)"
		case b.ID > 0:
			s += fmt.Sprintf(" (breakpoint %d)", b.ID)
		}
	}
	return s
}

// atBreakpoint says whether a thread stopped at a breakpoint (not a tracepoint): a stop that
// is not a halt.
func (st delveState) atBreakpoint() bool {
	for _, th := range append([]*delveThread{st.CurrentThread}, st.Threads...) {
		if th != nil && th.Breakpoint != nil && !th.Breakpoint.Tracepoint {
			return true
		}
	}
	return false
}
