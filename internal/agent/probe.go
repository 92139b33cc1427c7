package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// checker runs one readiness check. Its errors say why the check failed, without the probe's
// own description (the caller prefixes it).
type checker interface {
	Check(ctx context.Context) error
	String() string
}

// errProbeHopeless marks a failure no retry can fix: an exec probe whose command is missing or
// not executable. hopeless(err) carries it without changing err's text.
var errProbeHopeless = errors.New("this probe can never pass")

type hopelessError struct{ err error }

func hopeless(err error) error               { return hopelessError{err} }
func (h hopelessError) Error() string        { return h.err.Error() }
func (h hopelessError) Unwrap() error        { return h.err }
func (h hopelessError) Is(target error) bool { return target == errProbeHopeless }

// userAgent is what the kubelet sends with its probes ("kube-probe/<major>.<minor>"); apps that
// keep probes out of their access logs match its prefix.
const userAgent = "kube-probe/hotpod"

// ParseReady reads the --ready shorthand as a Probe: "tcp:PORT", "tcp:HOST:PORT",
// "http://HOST:PORT/PATH" or "https://HOST:PORT/PATH". The empty string means no probe.
func ParseReady(spec string) (*agentapi.Probe, error) {
	bad := func() (*agentapi.Probe, error) {
		return nil, fmt.Errorf("ready probe %q: want tcp:PORT, tcp:HOST:PORT or http(s)://HOST:PORT/PATH", spec)
	}
	switch {
	case spec == "":
		return nil, nil
	case strings.HasPrefix(spec, "tcp:"):
		addr := strings.TrimPrefix(spec, "tcp:")
		if !strings.Contains(addr, ":") {
			addr = "127.0.0.1:" + addr
		}
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 1 || n > 65535 {
			return bad()
		}
		return &agentapi.Probe{TCPSocket: &agentapi.TCPProbe{Host: host, Port: n}}, nil
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		u, err := url.Parse(spec)
		if err != nil || u.Hostname() == "" {
			return bad()
		}
		port := 80
		if u.Scheme == "https" {
			port = 443
		}
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
				return bad()
			}
		}
		path := u.EscapedPath()
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		return &agentapi.Probe{HTTPGet: &agentapi.HTTPGetProbe{Scheme: strings.ToUpper(u.Scheme), Host: u.Hostname(), Port: port, Path: path}}, nil
	}
	return bad()
}

// newChecker builds the check of p; exec and gRPC checks run as s runs its app.
func newChecker(p agentapi.Probe, s *Supervisor) (checker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	desc := p.String()
	host := func(h string) string {
		if h == "" {
			return "127.0.0.1"
		}
		return h
	}
	switch {
	case p.HTTPGet != nil:
		g := p.HTTPGet
		scheme := "http"
		if strings.EqualFold(g.Scheme, "HTTPS") {
			scheme = "https"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.Parse(scheme + "://" + net.JoinHostPort(host(g.Host), strconv.Itoa(g.Port)) + path)
		if err != nil {
			return nil, fmt.Errorf("probe %s: %w", desc, err)
		}
		return &httpCheck{desc: desc, url: u, headers: g.Headers, timeout: timeout, client: &http.Client{
			Transport: &http.Transport{
				DisableKeepAlives: true,                                  // as the kubelet: every check on a fresh connection
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify either
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}, nil
	case p.TCPSocket != nil:
		return &tcpCheck{desc: desc, addr: net.JoinHostPort(host(p.TCPSocket.Host), strconv.Itoa(p.TCPSocket.Port)), timeout: timeout}, nil
	case p.GRPC != nil:
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		return &grpcCheck{desc: desc, timeout: timeout, service: p.GRPC.Service,
			url:    "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(p.GRPC.Port)) + "/grpc.health.v1.Health/Check",
			client: &http.Client{Transport: &http.Transport{Protocols: &protos, DisableKeepAlives: true}}}, nil
	}
	return &execCheck{desc: desc, argv: p.Exec.Command, timeout: timeout, s: s}, nil
}

type tcpCheck struct {
	desc, addr string
	timeout    time.Duration
}

func (c *tcpCheck) String() string { return c.desc }

func (c *tcpCheck) Check(ctx context.Context) error {
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

type httpCheck struct {
	desc    string
	url     *url.URL
	headers []agentapi.Header
	timeout time.Duration
	client  *http.Client
}

func (c *httpCheck) String() string { return c.desc }

// Check passes on 200–399 (a redirect is not followed: it counts as success), as the kubelet's.
func (c *httpCheck) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for i, h := range c.headers {
		if i == 0 || !strings.EqualFold(c.headers[i-1].Name, h.Name) {
			req.Header.Del(h.Name) // the probe's own header replaces the default
		}
		req.Header.Add(h.Name, h.Value)
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return requestError(err, c.timeout)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return errors.New(resp.Status)
	}
	return nil
}

type execCheck struct {
	desc    string
	argv    []string
	timeout time.Duration
	s       *Supervisor
}

func (c *execCheck) String() string { return c.desc }

// Check runs the command with the app's environment and directory, in its own process group
// (killed at the timeout); exit 0 passes.
func (c *execCheck) Check(ctx context.Context) error {
	cfg := c.s.cfg
	path, err := lookPath(c.argv[0], cfg.Env, cfg.Dir)
	if err != nil {
		return hopeless(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		w.Close()
		return err
	}
	pid, done, err := c.s.spawn(path, c.argv, &os.ProcAttr{Dir: cfg.Dir, Env: cfg.Env, Files: []*os.File{null, w, w},
		Sys: appAttr()})
	w.Close()
	null.Close()
	if err != nil {
		r.Close()
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC) {
			return hopeless(err)
		}
		return err
	}
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 10<<10))
		_, _ = io.Copy(io.Discard, r)
		r.Close()
		out <- b
	}()
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var ws syscall.WaitStatus
	select {
	case ws = <-done:
	case <-timer.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("timed out after %v", c.timeout)
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // what it left behind holds the pipe
	var b []byte
	select {
	case b = <-out:
	case <-time.After(100 * time.Millisecond):
	}
	if ws.ExitStatus() == 0 && !ws.Signaled() {
		return nil
	}
	msg := fmt.Sprintf("exit code %d", ws.ExitStatus())
	if ws.Signaled() {
		msg = "killed by " + ws.Signal().String()
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		msg += ": " + lastLine(s)
	}
	if ws.ExitStatus() == 127 || ws.ExitStatus() == 126 {
		// The command ran, but what it runs is missing (a shell's "not found"): still no hope.
		if strings.Contains(string(b), "not found") || strings.Contains(string(b), "ermission denied") {
			return hopeless(errors.New(msg))
		}
	}
	return errors.New(msg)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// grpcCheck asks grpc.health.v1.Health/Check over h2c, with a hand-encoded message: the agent
// carries no gRPC library.
type grpcCheck struct {
	desc, url, service string
	timeout            time.Duration
	client             *http.Client
}

func (c *grpcCheck) String() string { return c.desc }

// grpcServing is HealthCheckResponse.ServingStatus SERVING.
const grpcServing = 1

var grpcStatusNames = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

var grpcCodeNames = []string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

func (c *grpcCheck) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// HealthCheckRequest{service: c.service}: field 1, wire type 2.
	var msg []byte
	if c.service != "" {
		msg = append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(c.service)))...)
		msg = append(msg, c.service...)
	}
	body := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))) // not compressed, length
	body = append(body, msg...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Grpc-Timeout", strconv.FormatInt(c.timeout.Milliseconds(), 10)+"m")
	resp, err := c.client.Do(req)
	if err != nil {
		return requestError(err, c.timeout)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not a gRPC server: HTTP %s", resp.Status)
	}
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	// The status is in the trailers, or in the headers of a trailers-only answer.
	status, message := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if status == "" {
		status, message = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if status != "0" {
		code, _ := strconv.Atoi(status)
		name := "code " + status
		if status != "" && code >= 0 && code < len(grpcCodeNames) {
			name = grpcCodeNames[code]
		}
		if m, err := url.PathUnescape(message); err == nil {
			message = m
		}
		return fmt.Errorf("rpc error: code = %s desc = %s", name, message)
	}
	if len(reply) < 5 || reply[0] != 0 || int(binary.BigEndian.Uint32(reply[1:5])) != len(reply)-5 {
		return errors.New("bad gRPC answer: not one uncompressed message")
	}
	st, err := healthStatus(reply[5:])
	if err != nil {
		return err
	}
	if st != grpcServing {
		name := strconv.Itoa(int(st))
		if st < uint64(len(grpcStatusNames)) {
			name = grpcStatusNames[st]
		}
		return fmt.Errorf("service unhealthy (responded with %s)", name)
	}
	return nil
}

// healthStatus reads field 1 (status, varint) of a HealthCheckResponse, skipping others.
func healthStatus(m []byte) (uint64, error) {
	bad := errors.New("bad gRPC answer: malformed HealthCheckResponse")
	var status uint64 // absent: UNKNOWN
	for len(m) > 0 {
		key, n := binary.Uvarint(m)
		if n <= 0 {
			return 0, bad
		}
		m = m[n:]
		switch key & 7 {
		case 0:
			v, n := binary.Uvarint(m)
			if n <= 0 {
				return 0, bad
			}
			m = m[n:]
			if key>>3 == 1 {
				status = v
			}
		case 1:
			if len(m) < 8 {
				return 0, bad
			}
			m = m[8:]
		case 2:
			l, n := binary.Uvarint(m)
			if n <= 0 || l > uint64(len(m)-n) {
				return 0, bad
			}
			m = m[n+int(l):]
		case 5:
			if len(m) < 4 {
				return 0, bad
			}
			m = m[4:]
		default:
			return 0, bad
		}
	}
	return status, nil
}

// requestError is a probe request's error as the probe reports it: without net/http's
// "Get URL:" wrapping (the probe names its URL), and a timeout said as one.
func requestError(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", timeout)
	}
	return err
}
