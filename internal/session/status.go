package session

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
)

// Status is what `hotpod status` shows of one session: its record and every agent of its pods,
// as the agent itself reports it.
type Status struct {
	kube.SessionRecord
	Agents []AgentStatus `json:"agents"`
}

// AgentStatus is one agent of a session's pod.
type AgentStatus struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Service   string `json:"service"`
	// SHA256 is the binary the agent runs; Current says it is the session's current build of
	// the service (kube.Build), the last edit shipped.
	SHA256  string `json:"sha256,omitempty"`
	Current bool   `json:"current"`
	// State, Restarts and ExitCode are the agent's (starting, ready, exited, stopped; the app's
	// starts after the first); ContainerRestarts the kubelet's.
	State             string `json:"state,omitempty"`
	Restarts          int    `json:"restarts"`
	ExitCode          *int   `json:"exit_code,omitempty"`
	ContainerRestarts int32  `json:"container_restarts"`
	// Error says why the agent could not be asked (a pod not running, a refused port-forward).
	Error string `json:"error,omitempty"`

	port int // the agent's, in the pod
}

// agentTimeout bounds the question to one agent: a port-forward and GET /v1/status.
const agentTimeout = 30 * time.Second

// Sessions reads the dev sessions in namespace ns ("": every namespace) that keep accepts (nil:
// all) and asks every agent of their pods what it runs, all at once.
func Sessions(ctx context.Context, k *kube.Client, ns string, keep func(kube.SessionRecord) bool) ([]Status, error) {
	records, err := k.Sessions(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, r := range records {
		if keep != nil && !keep(r) {
			continue
		}
		st := Status{SessionRecord: r}
		for _, pns := range r.Namespaces {
			pods, err := k.Clientset.CoreV1().Pods(pns).List(ctx, metav1.ListOptions{LabelSelector: manifest.SessionKey + "=" + r.ID})
			if err != nil {
				return nil, fmt.Errorf("the pods of hotpod session %s in %s: %w", r.ID, pns, err)
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				agents, err := manifest.Agents(p.Annotations)
				if err != nil {
					st.Agents = append(st.Agents, AgentStatus{Namespace: p.Namespace, Pod: p.Name, Error: err.Error()})
					continue
				}
				for _, a := range agents {
					st.Agents = append(st.Agents, agentOf(p, a))
				}
			}
		}
		var wg sync.WaitGroup
		for i := range st.Agents {
			if st.Agents[i].Error != "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ask(ctx, k, r, &st.Agents[i])
			}()
		}
		wg.Wait()
		sort.Slice(st.Agents, func(i, j int) bool {
			a, b := st.Agents[i], st.Agents[j]
			if a.Service != b.Service {
				return a.Service < b.Service
			}
			return a.Namespace+"/"+a.Pod+"/"+a.Container < b.Namespace+"/"+b.Pod+"/"+b.Container
		})
		out = append(out, st)
	}
	return out, nil
}

// agentOf is what the pod object says of agent a; Error is set when there is no agent to ask.
func agentOf(p *corev1.Pod, a manifest.Agent) AgentStatus {
	s := AgentStatus{Namespace: p.Namespace, Pod: p.Name, Container: a.Container, Service: a.Service, port: a.Port}
	running := false
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if c.Name == a.Container {
			s.ContainerRestarts = c.RestartCount
			running = c.State.Running != nil
		}
	}
	switch {
	case p.DeletionTimestamp != nil:
		s.Error = "pod terminating"
	case !running:
		s.Error = fmt.Sprintf("container not running (pod %s)", p.Status.Phase)
	}
	return s
}

// ask fills in what the agent says, through a port-forward of its own.
func ask(ctx context.Context, k *kube.Client, r kube.SessionRecord, s *AgentStatus) {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	port, _, err := k.PortForward(ctx, s.Namespace, s.Pod, s.port)
	if err != nil {
		s.Error = err.Error()
		return
	}
	st, err := (&agentapi.Client{Base: fmt.Sprintf("http://127.0.0.1:%d", port), Token: r.Token}).Status(ctx)
	if err != nil {
		s.Error = fmt.Sprintf("agent status: %v", err)
		return
	}
	s.SHA256, s.State, s.Restarts, s.ExitCode = st.SHA256, string(st.State), st.Restarts, st.ExitCode
	b, ok := r.Builds[s.Service]
	s.Current = ok && b.SHA256 == st.SHA256
}

// WriteText writes ss for a person: per session whether its hotpod still runs, then one line per
// agent with its service, pod, binary, whether that is the session's current build (and which
// iteration shipped it), the agent's state and restarts. Times are shown in now's location.
func WriteText(w io.Writer, ss []Status, now time.Time) error {
	for i, s := range ss {
		if i > 0 {
			fmt.Fprintln(w)
		}
		ago := "never"
		if !s.Heartbeat.IsZero() {
			ago = age(now.Sub(s.Heartbeat)) + " ago"
		}
		where := "namespace " + strings.Join(s.Namespaces, ", ")
		if len(s.Namespaces) > 1 {
			where = "namespaces " + strings.Join(s.Namespaces, ", ")
		}
		if s.Alive {
			fmt.Fprintf(w, "session %s  alive: hotpod %s, heartbeat %s  (%s)\n", s.ID, s.Holder, ago, where)
		} else {
			fmt.Fprintf(w, "session %s  left over: hotpod %s is gone (heartbeat %s); the next hotpod dev on these manifests takes it over  (%s)\n",
				s.ID, s.Holder, ago, where)
		}
		if len(s.Agents) == 0 {
			fmt.Fprintln(w, "  no pods")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVICE\tPOD\tBINARY\tBUILD\tSTATE\tRESTARTS")
		var notes []string
		for _, a := range s.Agents {
			pod := a.Pod
			if len(s.Namespaces) > 1 {
				pod = a.Namespace + "/" + pod
			}
			if agentsIn(s.Agents, a) > 1 {
				pod += "/" + a.Container
			}
			service := strings.TrimPrefix(a.Service, manifest.KoPrefix)
			restarts := strconv.Itoa(a.Restarts)
			if a.ContainerRestarts > 0 {
				restarts += fmt.Sprintf(" (container %d)", a.ContainerRestarts)
			}
			if a.Error != "" {
				fmt.Fprintf(tw, "  %s\t%s\t-\t-\tnot asked (below)\t-\n", service, pod)
				notes = append(notes, fmt.Sprintf("  %s: %s", pod, a.Error))
				continue
			}
			state := a.State
			if a.ExitCode != nil {
				state += fmt.Sprintf(" (exit %d)", *a.ExitCode)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", service, pod, short(a.SHA256), buildOf(s.Builds, a, now), state, restarts)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// age is d to the unit that matters: 4s, 5m, 26h.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh", int(d.Hours()))
}

// agentsIn counts the agents of a's pod: several are told apart by their containers.
func agentsIn(as []AgentStatus, a AgentStatus) int {
	n := 0
	for _, b := range as {
		if b.Namespace == a.Namespace && b.Pod == a.Pod {
			n++
		}
	}
	return n
}

// buildOf says whether a runs the session's current build of its service, and which iteration of
// the dev loop (as its ready events number them) shipped it.
func buildOf(builds map[string]kube.Build, a AgentStatus, now time.Time) string {
	b, ok := builds[a.Service]
	switch {
	case !ok:
		return "unknown (the session recorded no build)"
	case !a.Current:
		return "NOT current (the session's is " + short(b.SHA256) + ")"
	}
	at := b.At.In(now.Location())
	when := at.Format("15:04:05")
	if now.Sub(at) > 20*time.Hour {
		when = at.Format("2006-01-02 15:04")
	}
	if b.Iteration <= 1 {
		return "current: iteration 1 (the image), " + when
	}
	return fmt.Sprintf("current: iteration %d, %s", b.Iteration, when)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
