package agentapi

import (
	"fmt"
	"strconv"
	"strings"
)

// Probe is a readiness check with Kubernetes' semantics, as the rewrite takes it from a
// container's readinessProbe and hands it to the agent (as JSON in --probe). Named ports are
// resolved to numbers before it reaches the agent; exactly one handler is set.
type Probe struct {
	HTTPGet   *HTTPGetProbe `json:"httpGet,omitempty"`
	TCPSocket *TCPProbe     `json:"tcpSocket,omitempty"`
	Exec      *ExecProbe    `json:"exec,omitempty"`
	GRPC      *GRPCProbe    `json:"grpc,omitempty"`
	// TimeoutSeconds bounds one check (Kubernetes' default: 1).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// HTTPGetProbe passes on an answer from 200 to 399; redirects are not followed.
type HTTPGetProbe struct {
	Scheme  string   `json:"scheme,omitempty"` // HTTP (default) or HTTPS (certificate not checked, as the kubelet does)
	Host    string   `json:"host,omitempty"`   // default 127.0.0.1
	Port    int      `json:"port"`
	Path    string   `json:"path,omitempty"`
	Headers []Header `json:"httpHeaders,omitempty"`
}

// Header is one HTTP header of a probe.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPProbe passes when a connection opens.
type TCPProbe struct {
	Host string `json:"host,omitempty"` // default 127.0.0.1
	Port int    `json:"port"`
}

// ExecProbe runs Command inside the container (with the app's environment); exit 0 passes.
type ExecProbe struct {
	Command []string `json:"command"`
}

// GRPCProbe asks grpc.health.v1.Health/Check on Port; SERVING passes.
type GRPCProbe struct {
	Port    int    `json:"port"`
	Service string `json:"service,omitempty"`
}

// Validate checks that exactly one handler is set and its port or command is usable.
func (p Probe) Validate() error {
	n := 0
	for _, set := range []bool{p.HTTPGet != nil, p.TCPSocket != nil, p.Exec != nil, p.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("probe: want exactly one of httpGet, tcpSocket, exec, grpc; have %d", n)
	}
	port := func(n int) error {
		if n < 1 || n > 65535 {
			return fmt.Errorf("probe: port %d is not in 1-65535", n)
		}
		return nil
	}
	switch {
	case p.HTTPGet != nil:
		if s := strings.ToUpper(p.HTTPGet.Scheme); s != "" && s != "HTTP" && s != "HTTPS" {
			return fmt.Errorf("probe: scheme %q: want HTTP or HTTPS", p.HTTPGet.Scheme)
		}
		return port(p.HTTPGet.Port)
	case p.TCPSocket != nil:
		return port(p.TCPSocket.Port)
	case p.GRPC != nil:
		return port(p.GRPC.Port)
	}
	if len(p.Exec.Command) == 0 {
		return fmt.Errorf("probe: exec has no command")
	}
	return nil
}

// String describes the check the way a user reads it: "GET https://127.0.0.1:8443/healthz".
func (p Probe) String() string {
	host := func(h string) string {
		if h == "" {
			return "127.0.0.1"
		}
		return h
	}
	switch {
	case p.HTTPGet != nil:
		scheme := "http"
		if strings.EqualFold(p.HTTPGet.Scheme, "HTTPS") {
			scheme = "https"
		}
		path := p.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		return "GET " + scheme + "://" + host(p.HTTPGet.Host) + ":" + strconv.Itoa(p.HTTPGet.Port) + path
	case p.TCPSocket != nil:
		return "tcp " + host(p.TCPSocket.Host) + ":" + strconv.Itoa(p.TCPSocket.Port)
	case p.Exec != nil:
		return "exec " + strings.Join(p.Exec.Command, " ")
	case p.GRPC != nil:
		s := "grpc :" + strconv.Itoa(p.GRPC.Port)
		if p.GRPC.Service != "" {
			s += " service " + p.GRPC.Service
		}
		return s
	}
	return "no probe"
}
