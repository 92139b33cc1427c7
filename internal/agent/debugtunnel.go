package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A debugger client's connection through the agent, read as far as a swap needs: whether the
// client is running the app (a continue Delve answers when the app stops), so that the stop the
// swap's halts cause is kept from it and its run goes on in the new binary, as if nothing had
// happened. Everything else passes as it is.
type debugClient interface {
	// runs says whether the client has a run in flight.
	runs() bool
	// hold starts a swap of the app process pid: the stop it causes is not the client's news.
	hold(pid int)
	// release ends the swap: the client's run goes on in the new process.
	release()
}

// serveDebug carries one client connection (br holds what was read of it already) to dlv.
func (s *Supervisor) serveDebug(client net.Conn, br *bufio.Reader, dlv net.Conn) {
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	var t interface {
		debugClient
		run(client net.Conn, br *bufio.Reader, dlv net.Conn)
	}
	if first[0] == 'C' { // DAP's Content-Length, as Delve itself tells them apart
		t = &dapTunnel{}
	} else {
		t = &rpcTunnel{inflight: map[string][]byte{}, resend: map[string]bool{}}
	}
	s.mu.Lock()
	s.tunnels[t] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.tunnels, t)
		s.mu.Unlock()
	}()
	t.run(client, br, dlv)
}

// runCommands are the JSON-RPC Commands a swap's halt interrupts and that go on after it.
var runCommands = map[string]bool{"continue": true, "directionCongruentContinue": true}

// rpcTunnel carries JSON-RPC (net/rpc/jsonrpc: one JSON value per message).
type rpcTunnel struct {
	mu       sync.Mutex
	toDelve  io.Writer
	inflight map[string][]byte // run Commands not answered yet, by id: the request as sent
	swapped  map[int]bool      // app processes a swap replaced: their stops are not news
	holding  bool
	resend   map[string]bool // runs the swap stopped, to send again on release
}

func (t *rpcTunnel) run(client net.Conn, br *bufio.Reader, dlv net.Conn) {
	t.toDelve = dlv
	done := make(chan struct{}, 2)
	go func() { // client → Delve
		defer func() { closeWrite(dlv); done <- struct{}{} }()
		dec := json.NewDecoder(br)
		for {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				return
			}
			var req struct {
				Method string            `json:"method"`
				Params []json.RawMessage `json:"params"`
				ID     json.RawMessage   `json:"id"`
			}
			_ = json.Unmarshal(raw, &req)
			t.mu.Lock()
			if req.Method == "RPCServer.Command" && len(req.Params) == 1 {
				var cmd struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(req.Params[0], &cmd) == nil && runCommands[cmd.Name] {
					t.inflight[string(req.ID)] = append([]byte(nil), raw...)
				}
			}
			_, err := dlv.Write(append(raw, '\n'))
			t.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { // Delve → client
		defer func() { closeWrite(client); done <- struct{}{} }()
		dec := json.NewDecoder(bufio.NewReader(dlv))
		for {
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				return
			}
			var ans struct {
				ID     json.RawMessage `json:"id"`
				Result *struct {
					State struct{ Pid int }
				} `json:"result"`
			}
			_ = json.Unmarshal(raw, &ans)
			t.mu.Lock()
			req, ok := t.inflight[string(ans.ID)]
			if ok && ans.Result != nil && t.swapped[ans.Result.State.Pid] {
				// The swap's halt stopped the old process: the run goes on in the new one once
				// Delve has it (the Restart waits behind this very stop, then the Command waits
				// behind the Restart).
				if t.holding {
					t.resend[string(ans.ID)] = true
				} else {
					_, _ = dlv.Write(append(req, '\n'))
				}
				t.mu.Unlock()
				continue
			}
			delete(t.inflight, string(ans.ID))
			t.mu.Unlock()
			if _, err := client.Write(append(raw, '\n')); err != nil {
				return
			}
		}
	}()
	<-done
	<-done
}

func (t *rpcTunnel) runs() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inflight) > 0
}

func (t *rpcTunnel) hold(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.swapped == nil {
		t.swapped = map[int]bool{}
	}
	t.swapped[pid] = true
	t.holding = true
}

func (t *rpcTunnel) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding = false
	for id := range t.resend {
		if req, ok := t.inflight[id]; ok {
			_, _ = t.toDelve.Write(append(req, '\n'))
		}
	}
	clear(t.resend)
}

// dapTunnel carries DAP (Content-Length framed JSON).
type dapTunnel struct {
	mu      sync.Mutex
	toDelve io.Writer
	running bool // the client let the app run and has not heard of a stop since
	// A swap of a process the client was running: the stop Delve's DAP session reports for it
	// (its run ends when the process it ran is replaced) is kept from the client, and the run
	// is resumed for it in the new process, with a continue the agent sends and whose answer it
	// keeps too.
	holding    bool
	swallow    bool      // hold back the next stop that is the swap's
	swallowTil time.Time // until then
	resume     bool      // that stop came: send the continue on release
	ownSeq     int       // seq of the agent's own continue, whose answer is kept
}

// ownSeqBase numbers the agent's requests far above any client's.
const ownSeqBase = 1 << 30

func (t *dapTunnel) run(client net.Conn, br *bufio.Reader, dlv net.Conn) {
	t.toDelve = dlv
	done := make(chan struct{}, 2)
	go func() { // client → Delve
		defer func() { closeWrite(dlv); done <- struct{}{} }()
		for {
			frame, body, err := readDAP(br)
			if err != nil {
				return
			}
			var m struct {
				Type    string `json:"type"`
				Command string `json:"command"`
			}
			_ = json.Unmarshal(body, &m)
			t.mu.Lock()
			if m.Type == "request" {
				switch m.Command {
				case "continue", "next", "stepIn", "stepOut", "configurationDone", "reverseContinue", "stepBack":
					t.running = true
				}
			}
			_, err = dlv.Write(frame)
			t.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { // Delve → client
		defer func() { closeWrite(client); done <- struct{}{} }()
		r := bufio.NewReader(dlv)
		for {
			frame, body, err := readDAP(r)
			if err != nil {
				return
			}
			var m struct {
				Type       string `json:"type"`
				Event      string `json:"event"`
				RequestSeq int    `json:"request_seq"`
				Body       struct {
					Reason           string `json:"reason"`
					HitBreakpointIDs []int  `json:"hitBreakpointIds"`
				} `json:"body"`
			}
			_ = json.Unmarshal(body, &m)
			t.mu.Lock()
			keep := false
			switch {
			case m.Type == "response" && t.ownSeq != 0 && m.RequestSeq == t.ownSeq:
				keep, t.ownSeq = true, 0
			case m.Type == "event" && m.Event == "stopped":
				if t.swallow && time.Now().Before(t.swallowTil) && (m.Body.Reason == "pause" || (m.Body.Reason == "breakpoint" && len(m.Body.HitBreakpointIDs) == 0)) {
					keep, t.swallow = true, false
					if t.holding {
						t.resume = true
					} else {
						t.continueLocked()
					}
				} else {
					t.running = false
				}
			case m.Type == "event" && (m.Event == "terminated" || m.Event == "exited"):
				t.running = false
			}
			t.mu.Unlock()
			if keep {
				continue
			}
			if _, err := client.Write(frame); err != nil {
				return
			}
		}
	}()
	<-done
	<-done
}

func (t *dapTunnel) runs() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running
}

func (t *dapTunnel) hold(int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding, t.resume = true, false
	t.swallow, t.swallowTil = true, time.Now().Add(time.Minute)
}

func (t *dapTunnel) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.holding = false
	if t.resume {
		t.resume = false
		t.continueLocked()
		return
	}
	// Delve's DAP session may also go on by itself (its continue waited behind the Restart);
	// a stop of the swap that comes later is still kept, for a while.
	t.swallowTil = time.Now().Add(5 * time.Second)
}

// continueLocked sends the client's run on, in the new process.
func (t *dapTunnel) continueLocked() {
	t.ownSeq++
	if t.ownSeq < ownSeqBase {
		t.ownSeq = ownSeqBase
	}
	b := fmt.Appendf(nil, `{"seq":%d,"type":"request","command":"continue","arguments":{"threadId":1}}`, t.ownSeq)
	_, _ = fmt.Fprintf(t.toDelve, "Content-Length: %d\r\n\r\n%s", len(b), b)
}

// maxDAPMessage bounds the body a DAP message may announce: the agent allocates it before
// reading it. Delve's own messages (variables, stacks) stay far below.
const maxDAPMessage = 64 << 20

// readDAP reads one DAP message: the frame (its header lines ended by CRLF, as DAP writes
// them, then the body) and its body.
func readDAP(r *bufio.Reader) (frame, body []byte, err error) {
	tp := textproto.NewReader(r)
	var head bytes.Buffer
	n := -1
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, nil, err
		}
		head.WriteString(line + "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 {
				return nil, nil, fmt.Errorf("DAP: bad Content-Length %q", v)
			}
			if n > maxDAPMessage {
				return nil, nil, fmt.Errorf("DAP: a message of %d bytes, over the %d the agent takes", n, maxDAPMessage)
			}
		}
	}
	if n < 0 {
		return nil, nil, fmt.Errorf("DAP: a message without Content-Length")
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, err
	}
	return append(head.Bytes(), body...), body, nil
}
