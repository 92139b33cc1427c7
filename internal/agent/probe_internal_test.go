package agent

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// seen records what a test server was asked.
type seen struct {
	mu    sync.Mutex
	reqs  []*http.Request
	paths []string
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	s.paths = append(s.paths, r.URL.Path)
}

func (s *seen) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

func check(t *testing.T, p agentapi.Probe) error {
	t.Helper()
	s := &Supervisor{cfg: Config{Env: []string{"PATH=/usr/bin:/bin", "PROBE_VALUE=ok"}}, waiters: map[int]chan syscall.WaitStatus{}}
	c, err := newChecker(p, s)
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(t.Context())
}

// HTTP probes as the kubelet's: 200–399 pass, a redirect is not followed, HTTPS certificates
// are not checked, httpHeaders are sent (Host sets the request's host), the user agent is
// kube-probe's.
func TestHTTPProbe(t *testing.T) {
	var got seen
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r)
		switch r.URL.Path {
		case "/ok":
		case "/399":
			w.WriteHeader(399)
		case "/missing":
			http.NotFound(w, r)
		case "/redirect":
			http.Redirect(w, r, "/broken", http.StatusFound)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			time.Sleep(3 * time.Second)
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler) // self-signed
	defer tlsSrv.Close()
	cases := []struct {
		name   string
		srv    *httptest.Server
		scheme string
		path   string
		want   string // "" passes
	}{
		{"200", plain, "", "/ok", ""},
		{"399", plain, "HTTP", "/399", ""},
		{"404", plain, "", "/missing", "404 Not Found"},
		{"redirect not followed", plain, "", "/redirect", ""},
		{"https self-signed", tlsSrv, "HTTPS", "/ok", ""},
		{"https 404", tlsSrv, "HTTPS", "/missing", "404 Not Found"},
		{"timeout", plain, "", "/slow", "no answer within 1s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := check(t, agentapi.Probe{HTTPGet: &agentapi.HTTPGetProbe{Scheme: c.scheme, Port: portOf(t, c.srv.URL), Path: c.path}})
			if c.want == "" && err != nil {
				t.Fatalf("failed: %v", err)
			}
			if c.want != "" && (err == nil || err.Error() != c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	got.mu.Lock()
	for _, p := range got.paths {
		if p == "/broken" {
			t.Error("the probe followed a redirect")
		}
	}
	got.mu.Unlock()

	err := check(t, agentapi.Probe{HTTPGet: &agentapi.HTTPGetProbe{Port: portOf(t, plain.URL), Path: "/ok",
		Headers: []agentapi.Header{{Name: "Host", Value: "app.example"}, {Name: "X-Probe", Value: "a"}, {Name: "X-Probe", Value: "b"}, {Name: "Accept", Value: "application/json"}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := got.last()
	if r.Host != "app.example" || strings.Join(r.Header.Values("X-Probe"), ",") != "a,b" || r.Header.Get("Accept") != "application/json" ||
		!strings.HasPrefix(r.UserAgent(), "kube-probe/") {
		t.Fatalf("request: host %q headers %v", r.Host, r.Header)
	}
	if err := check(t, agentapi.Probe{HTTPGet: &agentapi.HTTPGetProbe{Port: freePort(t), Path: "/"}}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("closed port: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := check(t, agentapi.Probe{TCPSocket: &agentapi.TCPProbe{Port: ln.Addr().(*net.TCPAddr).Port}}); err != nil {
		t.Fatal(err)
	}
	if err := check(t, agentapi.Probe{TCPSocket: &agentapi.TCPProbe{Port: freePort(t)}}); err == nil {
		t.Fatal("a closed port passed")
	}
}

// Exec probes run a real command with the app's environment; a command that cannot run can
// never pass and says so.
func TestExecProbe(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "probe.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		command  []string
		timeout  int
		want     string
		hopeless bool
	}{
		{"exit 0", []string{"true"}, 0, "", false},
		{"app env", []string{"sh", "-c", `test "$PROBE_VALUE" = ok`}, 0, "", false},
		{"exit 3", []string{"sh", "-c", "echo not yet; exit 3"}, 0, "exit code 3: not yet", false},
		{"missing", []string{"/nonexistent/healthcheck"}, 0, "/nonexistent/healthcheck: executable file not found (no such file)", true},
		{"not on PATH", []string{"grpc_health_probe"}, 0, "executable file not found in $PATH", true},
		{"not executable", []string{notExec}, 0, "not executable", true},
		{"shell: not found", []string{"sh", "-c", "/nonexistent/check"}, 0, "not found", true},
		{"timeout", []string{"sleep", "30"}, 1, "timed out after 1s", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := check(t, agentapi.Probe{Exec: &agentapi.ExecProbe{Command: c.command}, TimeoutSeconds: c.timeout})
			if c.want == "" {
				if err != nil {
					t.Fatalf("failed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if got := errors.Is(err, errProbeHopeless); got != c.hopeless {
				t.Fatalf("hopeless: %v, want %v (%v)", got, c.hopeless, err)
			}
		})
	}
}

// grpcHealth is a gRPC health server written against the protocol (HTTP/2 without TLS, framed
// protobuf, status in the trailers), as grpc-go's answers: statuses per service.
func grpcHealth(t *testing.T, statuses map[string]int) int {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /grpc.health.v1.Health/Check", func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("TE") != "trailers" {
			http.Error(w, "not gRPC", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if len(b) < 5 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
			http.Error(w, "bad frame", http.StatusBadRequest)
			return
		}
		var service string
		if m := b[5:]; len(m) > 2 && m[0] == 0x0a {
			service = string(m[2 : 2+m[1]])
		}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		st, ok := statuses[service]
		if !ok {
			w.Header().Set("Grpc-Status", "5") // trailers-only: NOT_FOUND
			w.Header().Set("Grpc-Message", "unknown%20service")
			return
		}
		msg := []byte{0x08, byte(st)}
		_, _ = w.Write(append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...))
		w.Header().Set("Grpc-Status", "0")
	})
	srv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestGRPCProbe(t *testing.T) {
	port := grpcHealth(t, map[string]int{"": 1, "db": 2})
	cases := []struct{ service, want string }{
		{"", ""},
		{"db", "service unhealthy (responded with NOT_SERVING)"},
		{"cache", "rpc error: code = NotFound desc = unknown service"},
	}
	for _, c := range cases {
		err := check(t, agentapi.Probe{GRPC: &agentapi.GRPCProbe{Port: port, Service: c.service}})
		if (c.want == "" && err != nil) || (c.want != "" && (err == nil || err.Error() != c.want)) {
			t.Errorf("service %q: got %v, want %q", c.service, err, c.want)
		}
	}
	// An HTTP/1 server is not a gRPC server.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	if err := check(t, agentapi.Probe{GRPC: &agentapi.GRPCProbe{Port: portOf(t, plain.URL)}}); err == nil {
		t.Error("an HTTP/1 server passed a gRPC probe")
	}
}

func TestHealthStatusDecoding(t *testing.T) {
	for _, c := range []struct {
		msg  []byte
		want uint64
		ok   bool
	}{
		{nil, 0, true},
		{[]byte{0x08, 0x01}, 1, true},
		{[]byte{0x12, 0x02, 'h', 'i', 0x08, 0x02}, 2, true}, // an unknown field first
		{[]byte{0x08}, 0, false},
		{[]byte{0x12, 0x05, 'h'}, 0, false},
		{[]byte{0x0b}, 0, false}, // group wire type
	} {
		got, err := healthStatus(c.msg)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("% x: %d, %v", c.msg, got, err)
		}
	}
}

func TestParseReady(t *testing.T) {
	for spec, want := range map[string]string{
		"tcp:8080":                         "tcp 127.0.0.1:8080",
		"tcp:0.0.0.0:9000":                 "tcp 0.0.0.0:9000",
		"http://127.0.0.1:8080/healthz":    "GET http://127.0.0.1:8080/healthz",
		"https://localhost:8443/ready?x=1": "GET https://localhost:8443/ready?x=1",
		"http://127.0.0.1/":                "GET http://127.0.0.1:80/",
	} {
		p, err := ParseReady(spec)
		if err != nil || p.String() != want {
			t.Errorf("%s → %v, %v; want %s", spec, p, err, want)
		}
	}
	for _, bad := range []string{"udp:1", "tcp:", "tcp:99999", "http://:8080/", "ftp://x"} {
		if _, err := ParseReady(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if p, err := ParseReady(""); p != nil || err != nil {
		t.Errorf("empty: %v %v", p, err)
	}
}
