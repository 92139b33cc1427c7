package agent_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// stalledUpload starts an update whose body sends the header and a little more, then nothing. It
// returns when the agent has read that much, and a function that ends the body.
func stalledUpload(t *testing.T, base string) (done <-chan error, release func()) {
	t.Helper()
	patch := delta.EncodeRaw(read(t, childV2))
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+agentapi.PathUpdate, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(agentapi.TokenHeader, "Bearer "+token)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = &agentapi.APIError{Code: resp.StatusCode, Message: string(b)}
			}
		}
		errc <- err
	}()
	if _, err := pw.Write(patch[:delta.HeaderLen+4096]); err != nil {
		t.Fatal(err)
	}
	return errc, func() { pw.CloseWithError(io.ErrUnexpectedEOF) }
}

// An upload that stalls holds up neither the agent's shutdown (the kubelet's SIGTERM) nor
// another update.
func TestStalledUploadBlocksNothing(t *testing.T) {
	dir := t.TempDir()
	f := startIn(t, dir)
	f.waitReady(t)
	done, release := stalledUpload(t, f.client.Base)
	defer release()
	// The body is being written beside the binary.
	waitFor(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, ".app.hotpod-new-*"))
		return len(m) == 1
	})
	res, err := f.client.Update(t.Context(), delta.EncodeRaw(read(t, childV2)), waitReady)
	if err != nil || res.State != agentapi.StateReady || res.SHA256 != delta.Sum(read(t, childV2)).String() {
		t.Fatalf("a second update while one stalls: %+v, %v", res, err)
	}
	shut := make(chan int, 1)
	go func() { shut <- f.sup.Shutdown(0) }()
	select {
	case <-shut:
	case <-time.After(20 * time.Second): // well under BodyStall: the stall bound did not free it
		t.Fatal("Shutdown waits behind a stalled upload")
	}
	release()
	if err := <-done; err == nil {
		t.Fatal("the stalled upload succeeded")
	}
	waitFor(t, func() bool { return len(leftovers(dir)) == 0 })
}

// The server drops a body that stalls for BodyStall and removes what it wrote.
func TestServerDropsStalledBody(t *testing.T) {
	defer agent.SetBodyStall(300 * time.Millisecond)()
	dir := t.TempDir()
	f := startIn(t, dir)
	before := f.waitReady(t)
	done, release := stalledUpload(t, f.client.Base)
	defer release()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stalled body was accepted")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server waits on a stalled body")
	}
	waitFor(t, func() bool { return len(leftovers(dir)) == 0 })
	if after := f.waitReady(t); after.PID != before.PID || after.SHA256 != before.SHA256 {
		t.Fatalf("state changed: %+v → %+v", before, after)
	}
}

// A request without the right token is answered 401 at once, without its body being read, and
// its connection is closed.
func TestWrongTokenClosesConnection(t *testing.T) {
	f := start(t)
	f.waitReady(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.client.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A large body announced, none sent.
	_, err = io.WriteString(conn, "POST "+agentapi.PathUpdate+" HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer wrong\r\nContent-Length: 100000000\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading to the end: %v", err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close || !strings.Contains(string(rest), "token") {
		t.Fatalf("%s close=%v %s", resp.Status, resp.Close, rest)
	}
	// Closed: the next read ends.
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection stays open")
	}
}
