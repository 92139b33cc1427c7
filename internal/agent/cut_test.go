package agent_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// cutProxy relays TCP connections on loopback to target, as kubectl's port-forward does between
// the CLI and the agent. The first connection is cut (both ends closed) once cutAt bytes of the
// request body have gone through; when cutAt is the whole body, the request goes through and the
// answer is lost instead. Every later connection is relayed whole. cut is closed at the cut.
type cutProxy struct {
	addr string
	cut  chan struct{}
}

func startCutProxy(t *testing.T, target string, cutAt int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &cutProxy{addr: ln.Addr().String(), cut: make(chan struct{})}
	var first atomic.Bool
	first.Store(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if first.Swap(false) {
				go p.relayCut(c, a, cutAt)
				continue
			}
			go func() { io.Copy(a, c); a.(*net.TCPConn).CloseWrite() }()
			go func() { io.Copy(c, a); c.Close(); a.Close() }()
		}
	}()
	return p
}

// relayCut relays the request up to cutAt bytes of its body, and the agent's bytes (100
// Continue) until the body is through; then it closes both ends.
func (p *cutProxy) relayCut(c, a net.Conn, cutAt int) {
	var once sync.Once
	// p.cut is closed before the connections: the client can only see the cut after it.
	cut := func() { once.Do(func() { close(p.cut); c.Close(); a.Close() }) }
	var bodyDone atomic.Bool
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := a.Read(buf)
			if bodyDone.Load() { // the answer to a whole request: lost
				cut()
				return
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var head []byte // the request's header, until its end is seen
	body := -1      // body bytes relayed; -1 while in the header
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		chunk := buf[:n]
		if body < 0 && n > 0 {
			head = append(head, chunk...)
			i := bytes.Index(head, []byte("\r\n\r\n"))
			if i < 0 {
				if _, err := a.Write(chunk); err != nil {
					cut()
					return
				}
				continue
			}
			inBody := len(head) - (i + 4)
			if _, err := a.Write(chunk[:n-inBody]); err != nil {
				cut()
				return
			}
			chunk, body = chunk[n-inBody:], 0
		}
		if body >= 0 && len(chunk) > 0 {
			if body+len(chunk) >= cutAt {
				if body+len(chunk) == cutAt {
					bodyDone.Store(true) // set before the agent can answer
				}
				a.Write(chunk[:cutAt-body])
				if !bodyDone.Load() {
					cut()
				}
				return
			}
			if _, err := a.Write(chunk); err != nil {
				cut()
				return
			}
			body += len(chunk)
		}
		if err != nil {
			cut()
			return
		}
	}
}

// A port-forward that breaks in the middle of an update (in the patch's header, mid-body, one
// byte short, or after the whole body with the answer lost): the app runs the old binary or the
// new one, never a broken one; the binary on disk is the one the agent reports and runs; nothing
// half-written is left; and the next update, over a new connection, lands.
func TestConnectionCutMidUpdate(t *testing.T) {
	patch := delta.EncodeRaw(read(t, childV2))
	v1, v2 := delta.Sum(read(t, childV1)).String(), delta.Sum(read(t, childV2)).String()
	cases := []struct {
		name    string
		cutAt   int
		mayLand bool // the whole patch reached the agent: the new binary may run
	}{
		{"in the patch header", delta.HeaderLen / 2, false},
		{"mid-body", len(patch) / 2, false},
		{"one byte short", len(patch) - 1, false},
		{"answer lost", len(patch), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "app")
			copyFile(t, childV1, bin)
			a := startAgentProc(t, bin)
			before, err := a.client.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			p := startCutProxy(t, a.client.Base[len("http://"):], c.cutAt)
			via := &agentapi.Client{Base: "http://" + p.addr, Token: token}

			t0 := time.Now()
			res, err := via.Update(t.Context(), patch, waitReady)
			if err == nil {
				t.Fatalf("the update went through a cut connection: %+v", res)
			}
			select {
			case <-p.cut:
			default:
				t.Fatalf("the update failed before the cut: %v", err)
			}
			t.Logf("the client saw: %v", err)

			// Settled: no half-written file beside the binary, the app ready.
			var st agentapi.Status
			waitFor(t, func() bool {
				m, _ := filepath.Glob(filepath.Join(dir, ".app.hotpod-new-*"))
				st, err = a.client.Status(t.Context())
				return len(m) == 0 && err == nil && st.State == agentapi.StateReady
			})
			settled := time.Since(t0)
			onDisk := delta.Sum(read(t, bin)).String()
			if st.SHA256 != onDisk {
				t.Fatalf("the agent reports %s but the binary on disk is %s", st.SHA256, onDisk)
			}
			want := map[string]string{v1: "v1", v2: "v2"}[st.SHA256]
			switch {
			case want == "":
				t.Fatalf("the binary is neither v1 nor v2: %s", st.SHA256)
			case !c.mayLand && (st.SHA256 != v1 || st.PID != before.PID):
				t.Fatalf("a patch that never arrived whole changed the app: %+v → %+v", before, st)
			}
			if got := getApp(t, a.port); got != want {
				t.Fatalf("the app answers %q, the agent reports %s", got, want)
			}

			t1 := time.Now()
			res, err = via.Update(t.Context(), patch, waitReady)
			if err != nil || res.State != agentapi.StateReady || res.SHA256 != v2 {
				t.Fatalf("the next update: %+v %v\n%s", res, err, a.out.String())
			}
			if got := getApp(t, a.port); got != "v2" {
				t.Fatalf("after the next update the app answers %q", got)
			}
			waitFor(t, func() bool { return len(leftovers(dir)) == 0 })
			if rec := strings.TrimSpace(string(read(t, filepath.Join(dir, ".app.hotpod-sha256")))); rec != v2 {
				t.Fatalf("the record says %s, the binary is v2 %s", rec, v2)
			}
			t.Logf("cut after %d of %d body bytes: settled on %s %s after the update began, the next update landed in %s",
				c.cutAt, len(patch), want, settled.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		})
	}
}

// getApp is what the app at port answers on /.
func getApp(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port))
	if err != nil {
		t.Fatalf("the app does not answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
