package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Probe tells whether the app is ready to serve.
type Probe interface {
	Check(ctx context.Context) error
	String() string
}

// ParseProbe reads a probe spec: "tcp:PORT", "tcp:HOST:PORT" or "http://HOST:PORT/PATH".
// The empty string means no probe.
func ParseProbe(spec string) (Probe, error) {
	switch {
	case spec == "":
		return nil, nil
	case strings.HasPrefix(spec, "tcp:"):
		addr := strings.TrimPrefix(spec, "tcp:")
		if !strings.Contains(addr, ":") {
			addr = "127.0.0.1:" + addr
		}
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("ready probe %q: want tcp:PORT or tcp:HOST:PORT", spec)
		}
		return tcpProbe(addr), nil
	case strings.HasPrefix(spec, "http://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("ready probe %q: want http://HOST:PORT/PATH", spec)
		}
		return httpProbe(u.String()), nil
	}
	return nil, fmt.Errorf("ready probe %q: want tcp:PORT or http://HOST:PORT/PATH", spec)
}

type tcpProbe string

func (p tcpProbe) String() string { return "tcp:" + string(p) }

func (p tcpProbe) Check(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", string(p))
	if err != nil {
		return err
	}
	return c.Close()
}

type httpProbe string

func (p httpProbe) String() string { return string(p) }

var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func (p httpProbe) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, string(p), nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", p, resp.Status)
	}
	return nil
}

// pollInterval grows from a tight 1 ms right after start (the fast path of a small server) to
// 50 ms for apps that take long to come up.
func pollInterval(attempt int) time.Duration {
	d := time.Millisecond << min(attempt/20, 6)
	return min(d, 50*time.Millisecond)
}
