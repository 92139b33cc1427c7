package testutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/go-dap"
)

// DAP is a minimal Debug Adapter Protocol client for the debugger tests: what an IDE sends to
// attach to a running Delve ("remote" mode), set breakpoints and run, and the messages it
// gets back. Messages are read in the background; Expect waits for the next one that matches.
type DAP struct {
	t    testing.TB
	conn io.ReadWriteCloser
	seq  int

	mu   sync.Mutex
	msgs []dap.Message
	err  error
	more chan struct{}
}

// NewDAP starts reading what conn sends.
func NewDAP(t testing.TB, conn io.ReadWriteCloser) *DAP {
	c := &DAP{t: t, conn: conn, more: make(chan struct{}, 1)}
	go func() {
		r := bufio.NewReader(conn)
		for {
			m, err := dap.ReadProtocolMessage(r)
			c.mu.Lock()
			if err != nil {
				c.err = err
			} else {
				c.msgs = append(c.msgs, m)
			}
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *DAP) request(command string) dap.Request {
	c.seq++
	return dap.Request{ProtocolMessage: dap.ProtocolMessage{Seq: c.seq, Type: "request"}, Command: command}
}

func (c *DAP) send(m dap.Message) {
	c.t.Helper()
	if err := dap.WriteProtocolMessage(c.conn, m); err != nil {
		c.t.Fatalf("DAP send: %v", err)
	}
}

// Expect returns the first message not seen yet for which match is true, waiting up to
// timeout; messages before it are dropped.
func (c *DAP) Expect(what string, timeout time.Duration, match func(dap.Message) bool) dap.Message {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for i, m := range c.msgs {
			if match(m) {
				c.msgs = c.msgs[i+1:]
				c.mu.Unlock()
				return m
			}
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			c.t.Fatalf("DAP: waiting for %s: the connection ended: %v", what, err)
		}
		select {
		case <-c.more:
		case <-deadline:
			c.mu.Lock()
			seen := fmt.Sprint(describe(c.msgs))
			c.mu.Unlock()
			c.t.Fatalf("DAP: no %s within %v (unread: %s)", what, timeout, seen)
		}
	}
}

func describe(ms []dap.Message) []string {
	var out []string
	for _, m := range ms {
		b, _ := json.Marshal(m)
		if len(b) > 200 {
			b = append(b[:200], "..."...)
		}
		out = append(out, string(b))
	}
	return out
}

// Response waits for the answer to request seq, failing the test on an error answer.
func (c *DAP) Response(seq int, timeout time.Duration) dap.ResponseMessage {
	c.t.Helper()
	m := c.Expect(fmt.Sprintf("the answer to request %d", seq), timeout, func(m dap.Message) bool {
		r, ok := m.(dap.ResponseMessage)
		return ok && r.GetResponse().RequestSeq == seq
	})
	r := m.(dap.ResponseMessage)
	if !r.GetResponse().Success {
		c.t.Fatalf("DAP request %d (%s) failed: %s", seq, r.GetResponse().Command, r.GetResponse().Message)
	}
	return r
}

// Attach does what an IDE does to attach to a running headless Delve: initialize, attach in
// remote mode, and (after the initialized event) nothing else yet: breakpoints come next,
// then ConfigurationDone.
func (c *DAP) Attach(timeout time.Duration) {
	c.t.Helper()
	c.send(&dap.InitializeRequest{Request: c.request("initialize"), Arguments: dap.InitializeRequestArguments{
		ClientID: "hotpod-test", AdapterID: "go", PathFormat: "path", LinesStartAt1: true, ColumnsStartAt1: true}})
	c.Response(c.seq, timeout)
	c.send(&dap.AttachRequest{Request: c.request("attach"), Arguments: json.RawMessage(`{"mode":"remote","stopOnEntry":false}`)})
	seq := c.seq
	c.Expect("the initialized event", timeout, func(m dap.Message) bool { _, ok := m.(*dap.InitializedEvent); return ok })
	c.Response(seq, timeout)
}

// SetBreakpoints sets breakpoints at lines of file and returns Delve's answer.
func (c *DAP) SetBreakpoints(file string, lines []int, timeout time.Duration) []dap.Breakpoint {
	c.t.Helper()
	var bps []dap.SourceBreakpoint
	for _, l := range lines {
		bps = append(bps, dap.SourceBreakpoint{Line: l})
	}
	c.send(&dap.SetBreakpointsRequest{Request: c.request("setBreakpoints"), Arguments: dap.SetBreakpointsArguments{
		Source: dap.Source{Path: file}, Breakpoints: bps}})
	r := c.Response(c.seq, timeout).(*dap.SetBreakpointsResponse)
	return r.Body.Breakpoints
}

// ConfigurationDone ends the configuration: Delve lets the app run.
func (c *DAP) ConfigurationDone(timeout time.Duration) {
	c.t.Helper()
	c.send(&dap.ConfigurationDoneRequest{Request: c.request("configurationDone")})
	c.Response(c.seq, timeout)
}

// Continue lets the app run after a stop.
func (c *DAP) Continue(threadID int, timeout time.Duration) {
	c.t.Helper()
	c.send(&dap.ContinueRequest{Request: c.request("continue"), Arguments: dap.ContinueArguments{ThreadId: threadID}})
	c.Response(c.seq, timeout)
}

// Stopped waits for the next stopped event.
func (c *DAP) Stopped(timeout time.Duration) *dap.StoppedEvent {
	c.t.Helper()
	return c.Expect("a stopped event", timeout, func(m dap.Message) bool { _, ok := m.(*dap.StoppedEvent); return ok }).(*dap.StoppedEvent)
}

// TopFrame is the innermost frame of a thread (goroutine) that stopped.
func (c *DAP) TopFrame(threadID int, timeout time.Duration) dap.StackFrame {
	c.t.Helper()
	c.send(&dap.StackTraceRequest{Request: c.request("stackTrace"), Arguments: dap.StackTraceArguments{ThreadId: threadID, Levels: 1}})
	r := c.Response(c.seq, timeout).(*dap.StackTraceResponse)
	if len(r.Body.StackFrames) == 0 {
		c.t.Fatalf("DAP: no stack frame for thread %d", threadID)
	}
	return r.Body.StackFrames[0]
}
