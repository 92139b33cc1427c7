package agentapi_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// A stuck agent (or port-forward) ends every call in an error: a status that gets no answer, an
// update whose body is not taken, an update whose answer never comes.
func TestClientCallsAreBounded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength < 1<<20 {
			_, _ = bytes.NewBuffer(nil).ReadFrom(r.Body) // takes a small body, never answers
		}
		<-release // takes no large body, never answers
	}))
	defer srv.Close()
	defer close(release)
	c := &agentapi.Client{Base: srv.URL, Token: "t", CallTimeout: 300 * time.Millisecond, StallTimeout: 300 * time.Millisecond}
	bounded := func(name string, call func() error, want string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want an error with %q", name, err, want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: still waiting", name)
		}
	}
	bounded("status", func() error { _, err := c.Status(t.Context()); return err }, "did not answer within")
	// 64 MB cannot all sit in the socket buffers of a server that reads nothing.
	big := make([]byte, 64<<20)
	bounded("update, body not taken", func() error {
		_, err := c.Update(t.Context(), big, agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: time.Second})
		if !errors.Is(err, agentapi.ErrStalled) {
			return errors.New("not ErrStalled: " + errString(err))
		}
		return err
	}, "no progress")
	bounded("update, no answer", func() error {
		_, err := c.Update(t.Context(), make([]byte, 1000), agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: 200 * time.Millisecond})
		return err
	}, "did not answer after the body was sent")
	bounded("restart, no answer", func() error {
		_, err := c.Restart(t.Context(), agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: 200 * time.Millisecond})
		return err
	}, "did not answer within")
	bounded("events, no answer", func() error { return c.Events(t.Context(), func(agentapi.Event) {}) }, "did not answer within")
	bounded("dial", func() error {
		d := &agentapi.Client{Base: "http://127.0.0.1:1", Token: "t"}
		_, err := d.Status(t.Context())
		return err
	}, "refused")
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// The bounds leave long waits alone: an update whose body trickles in, and whose answer takes
// the wait it asked for, succeeds.
func TestClientWaitsAsAsked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<10)
		for {
			time.Sleep(20 * time.Millisecond) // slower in all than StallTimeout, never stalled that long
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		time.Sleep(600 * time.Millisecond) // the restart and the probe, within the asked wait
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"state":"ready","sha256":"x"}`))
	}))
	defer srv.Close()
	c := &agentapi.Client{Base: srv.URL, Token: "t", CallTimeout: 300 * time.Millisecond, StallTimeout: 400 * time.Millisecond}
	res, err := c.Update(t.Context(), make([]byte, 40<<10), agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: 5 * time.Second})
	if err != nil || res.State != agentapi.StateReady {
		t.Fatalf("%+v %v", res, err)
	}
}
