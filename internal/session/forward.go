package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// ParseForward reads a --port-forward LOCAL:REMOTE spec.
func ParseForward(spec string) (local, remote int, err error) {
	l, r, ok := strings.Cut(spec, ":")
	local, err1 := strconv.Atoi(l)
	remote, err2 := strconv.Atoi(r)
	if !ok || err1 != nil || err2 != nil || local < 0 || local > 65535 || remote < 1 || remote > 65535 {
		return 0, 0, fmt.Errorf("--port-forward %q: want LOCAL:REMOTE port numbers, e.g. 8080:8080", spec)
	}
	return local, remote, nil
}

// Forward listens on 127.0.0.1:local and forwards each connection to port remote of one of the
// session's pods, whichever is connected when the connection arrives: the forward follows the
// workload through pod replacements. It returns once listening, with the bound address.
func (m *Manager) Forward(ctx context.Context, local, remote int) (string, error) {
	return m.forward(ctx, fmt.Sprintf("%d:%d", local, remote), local, remote, m.Pods)
}

// forward listens on 127.0.0.1:local and forwards each connection to port remote of the first
// of pods() that takes it.
func (m *Manager) forward(ctx context.Context, spec string, local, remote int, pods func() []Pod) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
	if err != nil {
		return "", fmt.Errorf("--port-forward %s: %w", spec, err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	fw := &forwards{m: m, remote: remote, pods: pods, byPod: map[Pod]int{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fw.handle(ctx, c)
		}
	}()
	return ln.Addr().String(), nil
}

type forwards struct {
	m      *Manager
	remote int
	pods   func() []Pod // the candidates, best first
	mu     sync.Mutex
	byPod  map[Pod]int // pod → local port of its port-forward
}

func (f *forwards) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	for _, pod := range f.pods() {
		port, err := f.port(ctx, pod)
		if err != nil {
			continue
		}
		up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			f.forget(pod)
			continue
		}
		defer up.Close()
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
		go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
		<-done
		return
	}
}

func (f *forwards) port(ctx context.Context, pod Pod) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.byPod[pod]; ok {
		return p, nil
	}
	p, done, err := f.m.Kube.PortForward(ctx, pod.Namespace, pod.Name, f.remote)
	if err != nil {
		return 0, err
	}
	f.byPod[pod] = p
	go func() {
		<-done
		f.forget(pod)
	}()
	return p, nil
}

func (f *forwards) forget(pod Pod) {
	f.mu.Lock()
	delete(f.byPod, pod)
	f.mu.Unlock()
}
