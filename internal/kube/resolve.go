package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Target is one object of the manifests placed in the cluster: its resource and namespace are
// known and set on the object.
type Target struct {
	Obj *unstructured.Unstructured
	Ref Applied
	// Defined is set for a custom resource whose CRD is among the manifests: its resource is
	// known only once that CRD is established.
	Defined bool
}

// Namespaces says where namespaced objects without metadata.namespace go, kubectl's way.
type Namespaces struct {
	Default string // -n, else the kubeconfig context's namespace, else "default"
	// Explicit is set when the user gave -n: a manifest naming another namespace is refused,
	// as kubectl refuses it.
	Explicit bool
}

// Resolve checks objs against the cluster before anything is built or applied: every kind is
// known to the cluster (or defined by a CRD among objs), every namespace exists (or is created
// by a Namespace among objs), and no manifest contradicts an explicit -n. It sets each
// namespaced object's namespace and returns the targets in the order they are applied:
// namespaces, then what others depend on (Helm's install order), custom resources last.
func (c *Client) Resolve(ctx context.Context, objs []*unstructured.Unstructured, ns Namespaces) ([]Target, error) {
	if ns.Default == "" {
		ns.Default = "default"
	}
	mapper := c.mapper()
	crds := definedKinds(objs)
	newNamespaces := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "" {
			newNamespaces[o.GetName()] = true
		}
	}
	var out []Target
	seen := map[Applied]bool{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		name := strings.ToLower(gvk.Kind) + "/" + o.GetName()
		t := Target{Obj: o, Ref: Applied{Kind: gvk.Kind, Name: o.GetName()}}
		namespaced := false
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil:
			t.Ref.GVR = m.Resource
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		case crds[gvk.GroupKind()] != nil:
			d := crds[gvk.GroupKind()]
			t.Defined = true
			t.Ref.GVR = schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: d.plural}
			namespaced = d.namespaced
		case meta.IsNoMatchError(err):
			return nil, fmt.Errorf("%s: the cluster does not know kind %s (%s): install its CRD first, or add the CRD to the manifests", name, gvk.Kind, gvk.GroupVersion())
		default:
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if namespaced {
			switch got := o.GetNamespace(); {
			case got == "":
				o.SetNamespace(ns.Default)
			case ns.Explicit && got != ns.Default:
				return nil, fmt.Errorf("%s: its manifest says namespace %q but -n says %q: drop -n, or change the manifest", name, got, ns.Default)
			}
			t.Ref.Namespace = o.GetNamespace()
		} else if o.GetNamespace() != "" {
			o.SetNamespace("") // kubectl ignores it on cluster-scoped objects too
		}
		if seen[t.Ref] {
			return nil, fmt.Errorf("%s: the manifests hold it twice: keep one", t.Ref)
		}
		seen[t.Ref] = true
		out = append(out, t)
	}
	checked := map[string]bool{}
	for _, t := range out {
		n := t.Ref.Namespace
		if n == "" || checked[n] || newNamespaces[n] {
			continue
		}
		checked[n] = true
		if _, err := c.Clientset.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %q does not exist (%s goes there): create it (kubectl create namespace %s), or add a Namespace object to the manifests", n, t.Ref, n)
		} else if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", n, err)
		}
	}
	return Order(out), nil
}

// Order sorts targets in the order they are applied (and, reversed, deleted): namespaces, then
// what others depend on (Helm's install order), custom resources last; stable otherwise.
func Order(targets []Target) []Target {
	sort.SliceStable(targets, func(i, j int) bool { return installRank(targets[i]) < installRank(targets[j]) })
	return targets
}

type crdInfo struct {
	plural     string
	namespaced bool
}

// definedKinds reads the kinds that CustomResourceDefinitions among objs define.
func definedKinds(objs []*unstructured.Unstructured) map[schema.GroupKind]*crdInfo {
	out := map[schema.GroupKind]*crdInfo{}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		if kind != "" && plural != "" {
			out[schema.GroupKind{Group: group, Kind: kind}] = &crdInfo{plural: plural, namespaced: scope != "Cluster"}
		}
	}
	return out
}

// installOrder is Helm's: what others need comes first.
var installOrder = []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
	"ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
	"IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}

func installRank(t Target) int {
	if g := t.Ref.GVR.Group; g != "" && !builtinGroups[g] {
		return len(installOrder) // a custom resource, even one named Service: last
	}
	for i, k := range installOrder {
		if t.Ref.Kind == k {
			return i
		}
	}
	return len(installOrder)
}

var builtinGroups = map[string]bool{"apps": true, "batch": true, "policy": true, "autoscaling": true,
	"networking.k8s.io": true, "rbac.authorization.k8s.io": true, "storage.k8s.io": true,
	"apiextensions.k8s.io": true, "apiregistration.k8s.io": true, "admissionregistration.k8s.io": true}

func (c *Client) mapper() meta.RESTMapper {
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Clientset.Discovery()))
}

func (c *Client) dynamic() (dynamic.Interface, error) { return dynamic.NewForConfig(c.Config) }

// resource is the dynamic client of one target.
func resource(dyn dynamic.Interface, a Applied) dynamic.ResourceInterface {
	if a.Namespace == "" {
		return dyn.Resource(a.GVR)
	}
	return dyn.Resource(a.GVR).Namespace(a.Namespace)
}
