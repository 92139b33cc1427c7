package agentapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Client talks to one agent.
type Client struct {
	// Base is the agent's address, e.g. "http://127.0.0.1:7878" (a port-forward's local end).
	Base  string
	Token string
	HTTP  *http.Client // nil: http.DefaultClient
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

func (c *Client) do(ctx context.Context, method, path, query string, body []byte) (*http.Response, error) {
	u := c.Base + path
	if query != "" {
		u += "?" + query
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set(TokenHeader, "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return nil, &APIError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) call(ctx context.Context, method, path, query string, body []byte, out any) error {
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("agent %s: bad answer: %w", path, err)
	}
	return nil
}

// Status asks what the agent runs.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.call(ctx, http.MethodGet, PathStatus, "", nil, &s)
}

// Update sends a patch (see package delta) and waits as p says.
func (c *Client) Update(ctx context.Context, patch []byte, p UpdateParams) (UpdateResult, error) {
	var r UpdateResult
	return r, c.call(ctx, http.MethodPost, PathUpdate, p.Encode(), patch, &r)
}

// Restart restarts the app without changing the binary.
func (c *Client) Restart(ctx context.Context, p UpdateParams) (UpdateResult, error) {
	var r UpdateResult
	return r, c.call(ctx, http.MethodPost, PathRestart, p.Encode(), []byte{}, &r)
}

// Events calls fn for each event until ctx ends or the stream breaks. The first event is the
// agent's current status.
func (c *Client) Events(ctx context.Context, fn func(Event)) error {
	resp, err := c.do(ctx, http.MethodGet, PathEvents, "", nil)
	if err != nil {
		return err
	}
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
	resp, err := c.do(ctx, http.MethodGet, PathLogs, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
