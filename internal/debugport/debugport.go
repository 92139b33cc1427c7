// Package debugport serves the debugger of each service of a `hotpod dev --debug` session on a
// port of the developer's machine: one pod per service runs its app under Delve (the first that
// is ready; another when it goes away), and every connection to the port is carried to that
// Delve through the pod's agent (its control API, over the port-forward hotpod keeps to it).
// Delve tells JSON-RPC (dlv connect) from DAP (VS Code, GoLand) by the first byte, so one port
// serves both.
package debugport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/report"
)

// Delve returns the dlv binary for the nodes' platform (built once, in the background).
type Delve func(ctx context.Context) ([]byte, error)

// Set is the debug ports of a session, one per service.
type Set struct {
	Delve  Delve
	Report *report.Reporter

	mu       sync.Mutex
	services map[string]*service // by the session's service key
	ctx      context.Context     // Serve's: the session's
}

type service struct {
	name string // as the report names the service
	port int
	ln   net.Listener

	mu      sync.Mutex
	targets map[string]*agentapi.Client // ready pods, by name
	order   []string                    // in the order they joined
	current string                      // the pod under the debugger
	client  *agentapi.Client
	picking bool
	told    bool          // the connect instructions were printed
	changed chan struct{} // closed and replaced whenever current changes
}

// Listen opens 127.0.0.1:port for service key (named name in reports).
func (s *Set) Listen(key, name string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("--debug-port: 127.0.0.1:%d for %s: %w (pick a free one with --debug-port)", port, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.services == nil {
		s.services = map[string]*service{}
	}
	s.services[key] = &service{name: name, port: port, ln: ln, targets: map[string]*agentapi.Client{}, changed: make(chan struct{})}
	return nil
}

// Has says whether Listen was called for key.
func (s *Set) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[key] != nil
}

// Serve starts carrying connections to each service's port, until ctx ends; it returns at once.
func (s *Set) Serve(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	var all []*service
	for _, sv := range s.services {
		all = append(all, sv)
	}
	s.mu.Unlock()
	for _, sv := range all {
		go func() {
			<-ctx.Done()
			sv.ln.Close()
		}()
		go sv.serve(ctx)
	}
}

func (s *Set) service(key string) *service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[key]
}

// Joined tells of a pod of service key whose agent is connected and whose app is ready: the
// first such pod runs its app under Delve.
func (s *Set) Joined(ctx context.Context, key, pod string, c *agentapi.Client) {
	sv := s.service(key)
	if sv == nil {
		return
	}
	sv.mu.Lock()
	if _, ok := sv.targets[pod]; !ok {
		sv.order = append(sv.order, pod)
	}
	sv.targets[pod] = c
	sv.mu.Unlock()
	s.pick(ctx, sv)
}

// Left tells that pod's agent is gone: when it was the one under Delve, the next ready pod
// takes its place.
func (s *Set) Left(key, pod string) {
	sv := s.service(key)
	if sv == nil {
		return
	}
	sv.mu.Lock()
	delete(sv.targets, pod)
	sv.order = slices.DeleteFunc(sv.order, func(p string) bool { return p == pod })
	was := sv.current == pod
	if was {
		sv.setLocked("", nil)
	}
	sv.mu.Unlock()
	if was {
		s.Report.Infof(sv.name, "pod %s, which ran %s under the debugger, is gone: its debugger clients are disconnected", pod, sv.name)
		s.mu.Lock()
		ctx := s.ctx
		s.mu.Unlock()
		if ctx != nil { // the next pod goes under Delve for as long as the session lasts
			s.pick(ctx, sv)
		}
	}
}

func (sv *service) setLocked(pod string, c *agentapi.Client) {
	sv.current, sv.client = pod, c
	close(sv.changed)
	sv.changed = make(chan struct{})
}

// pick puts the first ready pod under Delve when none is.
func (s *Set) pick(ctx context.Context, sv *service) {
	sv.mu.Lock()
	if sv.current != "" || sv.picking || len(sv.order) == 0 {
		sv.mu.Unlock()
		return
	}
	sv.picking = true
	candidates := append([]string(nil), sv.order...)
	sv.mu.Unlock()
	defer func() {
		sv.mu.Lock()
		sv.picking = false
		sv.mu.Unlock()
	}()
	dlv, err := s.Delve(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.Report.Infof(sv.name, "no debugger: %v", err)
		}
		return
	}
	for _, pod := range candidates {
		sv.mu.Lock()
		c := sv.targets[pod]
		sv.mu.Unlock()
		if c == nil {
			continue
		}
		t0 := time.Now()
		res, err := c.PutDelve(ctx, dlv, agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: 2 * time.Minute})
		if err != nil {
			if ctx.Err() == nil {
				s.Report.Infof(sv.name, "pod %s cannot run %s under the debugger: %v", pod, sv.name, err)
			}
			continue
		}
		if res.Debug == nil || !res.Debug.Active {
			s.Report.Infof(sv.name, "pod %s did not start %s under the debugger (state %s)", pod, sv.name, res.State)
			continue
		}
		sv.mu.Lock()
		if _, still := sv.targets[pod]; !still {
			sv.mu.Unlock()
			continue
		}
		sv.setLocked(pod, c)
		first := !sv.told
		sv.told = true
		sv.mu.Unlock()
		s.Report.Infof(sv.name, "debugging %s in pod %s: Delve on 127.0.0.1:%d (dlv %s shipped, app restarted under it in %.1fs; state %s)",
			sv.name, pod, sv.port, report.Bytes(len(dlv)), time.Since(t0).Seconds(), res.State)
		if first {
			s.Report.Infof(sv.name, "%s", Instructions(sv.name, sv.port))
		}
		return
	}
}

// Instructions says how to attach to the debugger of service on port: the dlv connect command
// and a VS Code launch.json entry (GoLand: a "Go Remote" configuration on the same port).
func Instructions(service string, port int) string {
	return fmt.Sprintf(`attach a debugger to %[1]s (it keeps its connection and breakpoints across every swap):
    dlv connect 127.0.0.1:%[2]d
    VS Code, launch.json "configurations": {"name": "hotpod: %[1]s", "type": "go", "request": "attach", "mode": "remote", "host": "127.0.0.1", "port": %[2]d}
    GoLand: Run › Edit Configurations › Go Remote, host 127.0.0.1, port %[2]d`, service, port)
}

// targetWait bounds how long a connection that arrives before any pod runs under Delve waits
// for one.
const targetWait = 2 * time.Minute

func (sv *service) serve(ctx context.Context) {
	for {
		conn, err := sv.ln.Accept()
		if err != nil {
			return
		}
		go sv.carry(ctx, conn)
	}
}

// carry connects conn to the Delve of the current pod, waiting for one if need be.
func (sv *service) carry(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	deadline := time.After(targetWait)
	var up io.ReadWriteCloser
	for up == nil {
		sv.mu.Lock()
		c, changed := sv.client, sv.changed
		sv.mu.Unlock()
		if c != nil {
			var err error
			if up, err = c.DebugConnect(ctx); err != nil {
				var ae *agentapi.APIError
				if !errors.As(err, &ae) || ae.Code != 503 {
					fmt.Fprintf(os.Stderr, "hotpod: debugger of %s: %v\n", sv.name, err)
					return
				}
				up = nil // not under Delve (yet, or any more): wait for the next pod
			}
		}
		if up != nil {
			break
		}
		select {
		case <-changed:
		case <-time.After(time.Second):
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Ports lists the services' debug ports, for tests and reports.
func (s *Set) Ports() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	keys := make([]string, 0, len(s.services))
	for k := range s.services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[s.services[k].name] = s.services[k].port
	}
	return out
}
