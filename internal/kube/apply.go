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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
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

// Apply server-side-applies targets in their order (field manager hotpod, conflicts forced:
// what the manifests say wins, as with kubectl apply --server-side --force-conflicts), waiting
// for each CRD to be established before the resources it defines.
func (c *Client) Apply(ctx context.Context, targets []Target) ([]Applied, error) {
	dyn, err := c.dynamic()
	if err != nil {
		return nil, err
	}
	var out []Applied
	for _, t := range targets {
		if err := c.apply(ctx, dyn, t.Ref, t.Obj, false); err != nil {
			return out, err
		}
		out = append(out, t.Ref)
	}
	return out, nil
}

// ApplyObjects resolves objs (namespaced ones without a namespace go to ns) and applies them.
func (c *Client) ApplyObjects(ctx context.Context, ns string, objs []*unstructured.Unstructured) ([]Applied, error) {
	targets, err := c.Resolve(ctx, objs, Namespaces{Default: ns})
	if err != nil {
		return nil, err
	}
	return c.Apply(ctx, targets)
}

// apply sends one server-side apply, and waits for a CRD or a Namespace to be usable.
func (c *Client) apply(ctx context.Context, dyn dynamic.Interface, a Applied, o *unstructured.Unstructured, dryRun bool) error {
	_, err := c.applied(ctx, dyn, a, o, dryRun)
	return err
}

func (c *Client) applied(ctx context.Context, dyn dynamic.Interface, a Applied, o *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	body, err := json.Marshal(o.Object)
	if err != nil {
		return nil, err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	res, err := resource(dyn, a).Patch(ctx, a.Name, types.ApplyPatchType, body, opts)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", a, err)
	}
	if !dryRun {
		if err := c.usable(ctx, dyn, a); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// usable waits until what later objects need of a just-applied object is there: a CRD
// established, a Namespace's default ServiceAccount (pods are refused without it).
func (c *Client) usable(ctx context.Context, dyn dynamic.Interface, a Applied) error {
	switch a.Kind {
	case "CustomResourceDefinition":
		for deadline := time.Now().Add(time.Minute); ; {
			crd, err := resource(dyn, a).Get(ctx, a.Name, metav1.GetOptions{})
			if err == nil && established(crd) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not established after a minute: kubectl describe crd %s says why", a, a.Name)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	case "Namespace":
		for deadline := time.Now().Add(time.Minute); ; {
			if _, err := c.Clientset.CoreV1().ServiceAccounts(a.Name).Get(ctx, "default", metav1.GetOptions{}); err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("namespace %s: no default ServiceAccount after a minute (is the controller-manager running?)", a.Name)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
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
