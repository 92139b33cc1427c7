package session

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Workload names the pods of one workload: those its selector matches in its namespace, or one
// bare Pod by name.
type Workload struct {
	Namespace string
	Selector  labels.Selector // a Deployment's, StatefulSet's or DaemonSet's spec.selector
	Pod       string          // a bare Pod's name, instead of Selector
	Name      string          // deployment/api, for messages
}

// ForwardWorkload listens on 127.0.0.1:local and forwards each connection to port remote of a
// running pod of w (a ready one first),
// following the workload through pod replacements as Forward does. The pods need no agent: a
// chart's database forwards as well as the app.
func (m *Manager) ForwardWorkload(ctx context.Context, local, remote int, w Workload) (string, error) {
	f := informers.NewSharedInformerFactoryWithOptions(m.Kube.Clientset, 0, informers.WithNamespace(w.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			if w.Pod != "" {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.Pod).String()
			} else {
				o.LabelSelector = w.Selector.String()
			}
		}))
	inf := f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		f.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return "", fmt.Errorf("--port-forward %d:%s:%d: %w", local, w.Name, remote, ctx.Err())
	}
	pods := func() []Pod {
		var ps []*corev1.Pod
		for _, o := range inf.GetStore().List() {
			if p, ok := o.(*corev1.Pod); ok && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				ps = append(ps, p)
			}
		}
		// Ready pods first; by name otherwise, so that connections keep going to the same pod
		// (and its port-forward) while it lives.
		sort.Slice(ps, func(i, j int) bool {
			if ri, rj := podReady(ps[i]), podReady(ps[j]); ri != rj {
				return ri
			}
			return ps[i].Name < ps[j].Name
		})
		out := make([]Pod, len(ps))
		for i, p := range ps {
			out[i] = Pod{p.Namespace, p.Name}
		}
		return out
	}
	return m.forward(ctx, fmt.Sprintf("%d:%s:%d", local, w.Name, remote), local, remote, pods)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
