// Package session keeps one connection per agent of a hotpod session in the cluster: a pod
// informer notices new, restarted and deleted pods; each running agent gets a port-forward, is
// brought to the current binary on its own, and has its crashes and logs followed.
package session

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/devloop"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
)

// Manager follows the pods of one session.
type Manager struct {
	Kube *kube.Client
	// Namespaces are where the session's pods run: one informer each.
	Namespaces []string
	Session    string
	Token      string
	Loops      map[string]*devloop.Loop // by service (manifest.Agent.Service)
	Report     *report.Reporter
	// Logs receives every app's output, each line prefixed with its pod.
	Logs io.Writer
	// Debug, when set (hotpod dev --debug), hears of each agent that joined its loop and of
	// each that left.
	Debug Debugger

	mu      sync.Mutex
	entries map[string]*entry // by pod UID/container
	logs    map[string]bool   // log streams started, by pod UID/container/restart count
}

// Debugger is told which agents are connected, service by service (see package debugport).
type Debugger interface {
	Joined(ctx context.Context, service, pod string, c *agentapi.Client)
	Left(service, pod string)
}

type entry struct {
	target    *devloop.Target
	service   string
	pod       Pod
	cancel    context.CancelFunc
	connected bool
}

// Pod names one pod of the session.
type Pod struct{ Namespace, Name string }

// Targets lists the connected agents that run service, for its loop.
func (m *Manager) Targets(service string) []*devloop.Target {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*devloop.Target
	for _, e := range m.entries {
		if e.service == service && e.connected {
			out = append(out, e.target)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Pods lists the pods with a connected agent.
func (m *Manager) Pods() []Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[Pod]bool{}
	var out []Pod
	for _, e := range m.entries {
		if e.connected && !seen[e.pod] {
			seen[e.pod] = true
			out = append(out, e.pod)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Run follows the session's pods until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.entries = map[string]*entry{}
	m.logs = map[string]bool{}
	m.mu.Unlock()
	var factories []informers.SharedInformerFactory
	for _, ns := range m.Namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(m.Kube.Clientset, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = manifest.SessionKey + "=" + m.Session }))
		inf := f.Core().V1().Pods().Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { m.sync(ctx, o) },
			UpdateFunc: func(_, o any) { m.sync(ctx, o) },
			DeleteFunc: func(o any) {
				if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				if p, ok := o.(*corev1.Pod); ok {
					m.drop(p, nil)
				}
			},
		})
		f.Start(ctx.Done())
		factories = append(factories, f)
	}
	<-ctx.Done()
	for _, f := range factories {
		f.Shutdown()
	}
	m.mu.Lock()
	for k, e := range m.entries {
		e.cancel()
		delete(m.entries, k)
	}
	m.mu.Unlock()
}

// sync connects to the agents of a running pod and forgets those of a pod that stopped.
func (m *Manager) sync(ctx context.Context, o any) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	agents, err := manifest.Agents(p.Annotations)
	if err != nil {
		m.Report.Infof("", "pod %s: %v", p.Name, err)
		return
	}
	running := map[string]bool{}
	if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
		// Native sidecars report among the init containers.
		for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if s.State.Running != nil {
				running[s.Name] = true
			}
		}
	}
	m.drop(p, running)
	m.followLogs(ctx, p, agents)
	for _, a := range agents {
		if !running[a.Container] {
			continue
		}
		key := string(p.UID) + "/" + a.Container
		m.mu.Lock()
		_, have := m.entries[key]
		if have {
			m.mu.Unlock()
			continue
		}
		loop := m.Loops[a.Service]
		if loop == nil {
			m.mu.Unlock()
			continue
		}
		name := p.Name
		if len(agents) > 1 {
			name += "/" + a.Container
		}
		cctx, cancel := context.WithCancel(ctx)
		e := &entry{service: a.Service, pod: Pod{p.Namespace, p.Name}, cancel: cancel}
		m.entries[key] = e
		m.mu.Unlock()
		go m.connect(cctx, e, name, a, loop)
	}
}

// followLogs streams the output of each agent's container from its start (through the API, so
// the first lines and the agent's own complaints are not missed), once per container run.
func (m *Manager) followLogs(ctx context.Context, p *corev1.Pod, agents []manifest.Agent) {
	if m.Logs == nil || p.DeletionTimestamp != nil {
		return
	}
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if st.State.Running == nil && st.State.Terminated == nil {
			continue
		}
		name := ""
		for _, a := range agents {
			if a.Container == st.Name {
				name = p.Name
				if len(agents) > 1 {
					name += "/" + a.Container
				}
			}
		}
		key := fmt.Sprintf("%s/%s/%d", p.UID, st.Name, st.RestartCount)
		m.mu.Lock()
		started := m.logs[key]
		m.logs[key] = true
		m.mu.Unlock()
		if name == "" || started {
			continue
		}
		req := m.Kube.Clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: st.Name, Follow: true})
		go func() {
			r, err := req.Stream(ctx)
			if err != nil {
				return
			}
			defer r.Close()
			_, _ = io.Copy(report.NewPrefixWriter(m.Logs, name), r)
		}()
	}
}

// drop forgets the agents of p whose containers are not in running (all of them when nil).
func (m *Manager) drop(p *corev1.Pod, running map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := string(p.UID) + "/"
	for k, e := range m.entries {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix && !running[k[len(prefix):]] {
			e.cancel()
			delete(m.entries, k)
		}
	}
}

// connect keeps a port-forward to one agent, reconnecting while the entry lives (a restarted
// container, an apiserver restart).
func (m *Manager) connect(ctx context.Context, e *entry, name string, a manifest.Agent, loop *devloop.Loop) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := m.serve(ctx, e, name, a, loop)
		m.mu.Lock()
		e.connected = false
		m.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if attempt > 0 || err != nil {
			m.Report.Infof(loop.Service, "pod %s: agent connection lost (%v); reconnecting", name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt+1, 5)) * 500 * time.Millisecond):
		}
	}
}

func (m *Manager) serve(ctx context.Context, e *entry, name string, a manifest.Agent, loop *devloop.Loop) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	local, done, err := m.Kube.PortForward(fctx, e.pod.Namespace, e.pod.Name, a.Port)
	if err != nil {
		return err
	}
	client := &agentapi.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", local), Token: m.Token}
	rtt := time.Duration(1<<63 - 1)
	var st agentapi.Status
	for range 3 { // the first call also opens the stream; keep the fastest round trip
		t0 := time.Now()
		if st, err = client.Status(fctx); err != nil {
			return fmt.Errorf("agent status: %w", err)
		}
		rtt = min(rtt, time.Since(t0))
	}
	runs, _ := delta.ParseHash(st.SHA256)
	t := devloop.NewTarget(name, client, runs, rtt)
	m.mu.Lock()
	e.target, e.connected = t, true
	m.mu.Unlock()
	go loop.Follow(fctx, t)
	loop.Join(fctx, t)
	if m.Debug != nil {
		go m.Debug.Joined(fctx, a.Service, name, client)
		defer m.Debug.Left(a.Service, name)
	}
	select {
	case err := <-done:
		return fmt.Errorf("port-forward closed: %v", err)
	case <-ctx.Done():
		return nil
	}
}
