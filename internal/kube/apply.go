package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// FieldManager is hotpod's name in server-side apply.
const FieldManager = "hotpod"

// Applied identifies an object hotpod applied, so it can wait for it and delete it.
type Applied struct {
	GVR       schema.GroupVersionResource
	Kind      string
	Namespace string
	Name      string
}

func (a Applied) String() string {
	if a.Namespace == "" {
		return strings.ToLower(a.Kind) + "/" + a.Name
	}
	return strings.ToLower(a.Kind) + "/" + a.Name + " in " + a.Namespace
}

// Platforms reads the OS/architecture of the cluster's nodes, most common first.
func (c *Client) Platforms(ctx context.Context) ([]v1.Platform, error) {
	nodes, err := c.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes to learn their platform: %w", err)
	}
	type key struct{ os, arch string }
	count := map[key]int{}
	for _, n := range nodes.Items {
		k := key{n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture}
		if k.os != "" && k.arch != "" {
			count[k]++
		}
	}
	if len(count) == 0 {
		return nil, fmt.Errorf("the cluster has no nodes with a known platform: is any node registered?")
	}
	keys := make([]key, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if count[keys[i]] != count[keys[j]] {
			return count[keys[i]] > count[keys[j]]
		}
		return keys[i].arch < keys[j].arch
	})
	out := make([]v1.Platform, len(keys))
	for i, k := range keys {
		out[i] = v1.Platform{OS: k.os, Architecture: k.arch}
	}
	return out, nil
}

// Apply server-side-applies objs (field manager hotpod, conflicts forced: in dev mode hotpod
// owns what it applies). Namespaced objects without a namespace go to ns.
func (c *Client) Apply(ctx context.Context, ns string, objs []*unstructured.Unstructured) ([]Applied, error) {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Clientset.Discovery()))
	var out []Applied
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return out, fmt.Errorf("apply %s %s: the cluster does not know this kind: %w", gvk.Kind, o.GetName(), err)
		}
		a := Applied{GVR: m.Resource, Kind: gvk.Kind, Name: o.GetName()}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				o.SetNamespace(ns)
			}
			a.Namespace = o.GetNamespace()
			ri = dyn.Resource(m.Resource).Namespace(a.Namespace)
		}
		body, err := json.Marshal(o.Object)
		if err != nil {
			return out, err
		}
		force := true
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return out, fmt.Errorf("apply %s: %w", a, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Delete removes applied objects, newest first, and waits (up to timeout) until they are gone.
func (c *Client) Delete(ctx context.Context, applied []Applied, timeout time.Duration) error {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	var errs []string
	bg := metav1.DeletePropagationForeground
	for i := len(applied) - 1; i >= 0; i-- {
		a := applied[i]
		err := dyn.Resource(a.GVR).Namespace(a.Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Sprintf("%s: %v", a, err))
		}
	}
	deadline := time.Now().Add(timeout)
	for _, a := range applied {
		for time.Now().Before(deadline) {
			_, err := dyn.Resource(a.GVR).Namespace(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete: %s", strings.Join(errs, "; "))
	}
	return nil
}

// WaitRollout waits until every Deployment, StatefulSet and DaemonSet in applied runs its
// current template on all replicas. progress is called with a status line when it changes.
// On timeout the error carries the pods' waiting reasons and recent warning events.
func (c *Client) WaitRollout(ctx context.Context, applied []Applied, timeout time.Duration, progress func(string)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		pending := []string{}
		for _, a := range applied {
			ready, msg, err := c.rolledOut(ctx, a)
			if err != nil {
				return err
			}
			if !ready {
				pending = append(pending, a.Kind+"/"+a.Name+": "+msg)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if line := strings.Join(pending, "; "); line != last {
			progress("waiting for rollout: " + line)
			last = line
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout not done after %s: %s%s", timeout, strings.Join(pending, "; "), c.why(ctx, applied))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Client) rolledOut(ctx context.Context, a Applied) (bool, string, error) {
	apps := c.Clientset.AppsV1()
	switch a.Kind {
	case "Deployment":
		d, err := apps.Deployments(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want
		return ok, fmt.Sprintf("%d/%d ready", s.ReadyReplicas, want), nil
	case "StatefulSet":
		d, err := apps.StatefulSets(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.CurrentRevision == s.UpdateRevision
		return ok, fmt.Sprintf("%d/%d ready", s.ReadyReplicas, want), nil
	case "DaemonSet":
		d, err := apps.DaemonSets(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		s := d.Status
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberReady == s.DesiredNumberScheduled
		return ok, fmt.Sprintf("%d/%d ready", s.NumberReady, s.DesiredNumberScheduled), nil
	}
	return true, "", nil
}

// why gathers what keeps pods from running: containers' waiting reasons, unschedulable
// conditions, warning events.
func (c *Client) why(ctx context.Context, applied []Applied) string {
	seen := map[string]bool{}
	var reasons []string
	for _, a := range applied {
		if seen[a.Namespace] || a.Namespace == "" {
			continue
		}
		seen[a.Namespace] = true
		pods, err := c.Clientset.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range pods.Items {
				reasons = append(reasons, podTrouble(p)...)
			}
		}
		evs, err := c.Clientset.CoreV1().Events(a.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
		if err == nil {
			for i, e := range evs.Items {
				if i >= 5 {
					break
				}
				reasons = append(reasons, fmt.Sprintf("%s/%s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message))
			}
		}
	}
	if len(reasons) == 0 {
		return ""
	}
	return "\n  " + strings.Join(reasons, "\n  ")
}

func podTrouble(p corev1.Pod) []string {
	var out []string
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			out = append(out, fmt.Sprintf("pod %s: %s: %s", p.Name, cond.Reason, cond.Message))
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			out = append(out, fmt.Sprintf("pod %s container %s: %s: %s", p.Name, s.Name, w.Reason, w.Message))
		}
	}
	return out
}

// CreateNamespace creates ns and waits for its default ServiceAccount, which pods need.
func (c *Client) CreateNamespace(ctx context.Context, ns string) error {
	cs := c.Clientset.CoreV1()
	if _, err := cs.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := cs.ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return nil
		}
	}
	return fmt.Errorf("namespace %s: no default ServiceAccount after a minute (is the controller-manager running?)", ns)
}

// DeleteNamespace deletes ns and waits (up to ctx) until it is gone.
func (c *Client) DeleteNamespace(ctx context.Context, ns string) error {
	cs := c.Clientset.CoreV1()
	if err := cs.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for ctx.Err() == nil {
		if _, err := cs.Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ctx.Err()
}
