package agentapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Default bounds of a Client's calls; see the Client fields of the same names.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultCallTimeout  = 5 * time.Second
	DefaultStallTimeout = 30 * time.Second
)

// Client talks to one agent. Every call is bounded: a dead port-forward or a stalled agent ends
// in an error, never in a caller that hangs.
type Client struct {
	// Base is the agent's address, e.g. "http://127.0.0.1:7878" (a port-forward's local end).
	Base  string
	Token string
	// HTTP, when set, replaces the client's own (a transport with DialTimeout).
	HTTP *http.Client
	// DialTimeout bounds opening a connection (default DefaultDialTimeout).
	DialTimeout time.Duration
	// CallTimeout bounds a short call (status, a file) and, for a stream (events, logs), the wait
	// for its first answer (default DefaultCallTimeout).
	CallTimeout time.Duration
	// StallTimeout fails an update or file upload whose body makes no progress for this long, and
	// bounds the agent's answer after the body was sent beyond the wait the call asked for
	// (default DefaultStallTimeout).
	StallTimeout time.Duration

	once sync.Once
	hc   *http.Client
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() {
		d := &net.Dialer{Timeout: or(c.DialTimeout, DefaultDialTimeout), KeepAlive: 15 * time.Second}
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext:           d.DialContext,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       60 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // patches are compressed already, events are small
		}}
	})
	return c.hc
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// APIError is an answer other than 2xx.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("agent answered %d: %s", e.Code, e.Message) }

// IsWrongBase reports whether err says the patch was made against another binary than the
// one the agent runs.
func IsWrongBase(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusConflict
}

// ErrStalled says an upload made no progress for the client's StallTimeout.
var ErrStalled = errors.New("the agent took nothing for too long")

// request is one call: its body, and how long its answer may take once the body has been sent.
type request struct {
	method, path, query string
	body                []byte
	// answerWithin bounds the wait for the answer's header after the body was sent; 0 for the
	// CallTimeout.
	answerWithin time.Duration
}

// do sends rq and returns the answer once its header arrived. The deadline of the answer's body
// is the caller's ctx (and cancel, which the caller calls when done with the body).
func (c *Client) do(ctx context.Context, rq request) (*http.Response, context.CancelFunc, error) {
	u := c.Base + rq.path
	if rq.query != "" {
		u += "?" + rq.query
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var body io.Reader
	answerWithin := or(rq.answerWithin, or(c.CallTimeout, DefaultCallTimeout))
	// The watchdog: while the body goes out, no progress for StallTimeout fails the call; once it
	// is sent (or with none), the answer's header must come within answerWithin.
	stall := or(c.StallTimeout, DefaultStallTimeout)
	noAnswer := func() {
		what := "the agent at " + c.Base + " did not answer"
		if len(rq.body) > 0 {
			what += " after the body was sent"
		}
		cancel(fmt.Errorf("%s within %v", what, answerWithin))
	}
	var sent atomic.Bool // the whole body went out
	first := answerWithin
	if len(rq.body) > 0 {
		first = stall
	}
	timer := time.AfterFunc(first, func() {
		if len(rq.body) > 0 && !sent.Load() {
			cancel(fmt.Errorf("%w: no progress for %v sending %s (the port-forward or the agent is stuck)", ErrStalled, stall, rq.path))
			return
		}
		noAnswer()
	})
	switch {
	case len(rq.body) > 0:
		body = &progressReader{r: bytes.NewReader(rq.body), progress: func(done bool) {
			if done {
				sent.Store(true)
				timer.Reset(answerWithin)
			} else {
				timer.Reset(stall)
			}
		}}
	case rq.body != nil:
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, body)
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, nil, err
	}
	req.Header.Set(TokenHeader, "Bearer "+c.Token)
	if rq.body != nil {
		req.ContentLength = int64(len(rq.body))
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.httpClient().Do(req)
	timer.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		cancel(nil)
		return nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer cancel(nil)
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return nil, nil, &APIError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp, func() { cancel(nil) }, nil
}

// progressReader reports each read of the body, and its end.
type progressReader struct {
	r        io.Reader
	progress func(done bool)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.progress(err == io.EOF)
	return n, err
}

func (c *Client) call(ctx context.Context, rq request, out any) error {
	resp, cancel, err := c.do(ctx, rq)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	// The header came; the rest is a small JSON document.
	t := time.AfterFunc(or(c.CallTimeout, DefaultCallTimeout), cancel)
	defer t.Stop()
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agent %s: bad answer: %w", rq.path, err)
	}
	return nil
}

// Status asks what the agent runs.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.call(ctx, request{method: http.MethodGet, path: PathStatus}, &s)
}

// Update sends a patch (see package delta) and waits as p says: the agent answers within p's
// Timeout once it has the patch, and the client gives it StallTimeout more.
func (c *Client) Update(ctx context.Context, patch []byte, p UpdateParams) (UpdateResult, error) {
	var r UpdateResult
	return r, c.call(ctx, request{method: http.MethodPost, path: PathUpdate, query: p.Encode(), body: patch,
		answerWithin: c.waitBound(p)}, &r)
}

// Restart restarts the app without changing the binary.
func (c *Client) Restart(ctx context.Context, p UpdateParams) (UpdateResult, error) {
	var r UpdateResult
	return r, c.call(ctx, request{method: http.MethodPost, path: PathRestart, query: p.Encode(), body: []byte{},
		answerWithin: c.waitBound(p)}, &r)
}

// waitBound is how long the agent may take to answer an update or restart: the wait it was
// asked for (a stop takes up to the app's grace period too) and the stall bound.
func (c *Client) waitBound(p UpdateParams) time.Duration {
	t := p.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return t + or(c.StallTimeout, DefaultStallTimeout)
}

// PutFile writes data to path (relative, slash-separated; see CheckFilePath) in the agent's sync
// dir. The agent verifies its SHA-256 and renames it into place; the app keeps running.
func (c *Client) PutFile(ctx context.Context, path string, data []byte) error {
	esc, err := escapeFilePath(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if data == nil {
		data = []byte{}
	}
	return c.call(ctx, request{method: http.MethodPut, path: PathFiles + esc,
		query: url.Values{"sha256": {hex.EncodeToString(sum[:])}}.Encode(), body: data}, nil)
}

// DeleteFile removes path (a file, or a directory with what it holds) from the agent's sync
// dir. Removing what is not there is no error.
func (c *Client) DeleteFile(ctx context.Context, path string) error {
	esc, err := escapeFilePath(path)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodDelete, path: PathFiles + esc}, nil)
}

func escapeFilePath(path string) (string, error) {
	if err := CheckFilePath(path); err != nil {
		return "", err
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

// Events calls fn for each event until ctx ends or the stream breaks. The first event is the
// agent's current status.
func (c *Client) Events(ctx context.Context, fn func(Event)) error {
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: PathEvents})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("agent events: bad line: %w", err)
		}
		fn(e)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// Logs copies the app's output to w until ctx ends or the stream breaks.
func (c *Client) Logs(ctx context.Context, w io.Writer) error {
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: PathLogs})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// PutDelve sends dlv (built for the agent's platform) to an agent started with --debug, which
// verifies its SHA-256, puts it in place and from then on runs the app under it; the answer
// comes as p says (wait=ready: once the app runs under the debugger and is ready, or paused).
func (c *Client) PutDelve(ctx context.Context, dlv []byte, p UpdateParams) (UpdateResult, error) {
	sum := sha256.Sum256(dlv)
	q := p.Encode()
	if q != "" {
		q += "&"
	}
	q += "sha256=" + hex.EncodeToString(sum[:])
	var r UpdateResult
	return r, c.call(ctx, request{method: http.MethodPut, path: PathDebugDelve, query: q, body: dlv,
		answerWithin: c.waitBound(p)}, &r)
}

// DebugConnect opens a connection to the debugger the app runs under (see PathDebugConnect):
// what is written to it goes to Delve as it is, JSON-RPC or DAP. ctx bounds the opening only.
func (c *Client) DebugConnect(ctx context.Context) (io.ReadWriteCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, or(c.CallTimeout, DefaultCallTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+PathDebugConnect, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(TokenHeader, "Bearer "+c.Token)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", DebugUpgrade)
	// Its own transport: an upgraded connection never goes back to a pool.
	d := &net.Dialer{Timeout: or(c.DialTimeout, DefaultDialTimeout), KeepAlive: 15 * time.Second}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return nil, &APIError{Code: resp.StatusCode, Message: e.Error}
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("agent debug connection: the answer is not a connection")
	}
	return rwc, nil
}
