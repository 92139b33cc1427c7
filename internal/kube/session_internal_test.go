package kube

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestOrder(t *testing.T) {
	var ts []Target
	for _, k := range []struct{ group, kind string }{
		{"apps", "Deployment"}, {"serving.knative.dev", "Service"}, {"", "Service"}, {"", "Secret"},
		{"apiextensions.k8s.io", "CustomResourceDefinition"}, {"", "Namespace"}, {"batch", "Job"}, {"e2e.io", "Widget"},
	} {
		ts = append(ts, Target{Ref: Applied{GVR: schema.GroupVersionResource{Group: k.group}, Kind: k.kind}})
	}
	var got []string
	for _, t := range Order(ts) {
		got = append(got, t.Ref.GVR.Group+"/"+t.Ref.Kind)
	}
	want := "/Namespace /Secret apiextensions.k8s.io/CustomResourceDefinition /Service apps/Deployment batch/Job serving.knative.dev/Service e2e.io/Widget"
	if strings.Join(got, " ") != want {
		t.Fatalf("order\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestBeforeRoundTrip: the record an object carries decodes to the object as it was.
func TestBeforeRoundTrip(t *testing.T) {
	o := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, resourceVersion: '7', uid: u1}\ndata: {a: b}\nstatus: {x: 1}\n")
	enc, err := encodeBefore(clean(o))
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeBefore(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.GetResourceVersion() != "" || back.Object["status"] != nil || back.GetUID() != "u1" || back.Object["data"].(map[string]any)["a"] != "b" {
		t.Fatalf("decoded %v", back.Object)
	}
	if _, err := decodeBefore("not base64!"); err == nil {
		t.Fatal("a corrupt record decoded")
	}
}

// TestSameContent: what the server keeps for itself and the session's marks are not changes;
// the user's fields are.
func TestSameContent(t *testing.T) {
	live := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, resourceVersion: '7', managedFields: [{manager: kubectl}]}\ndata: {a: b}\n")
	same := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, resourceVersion: '8', labels: {hotpod.dev/session: s1}, annotations: {hotpod.dev/before: xyz}}\ndata: {a: b}\n")
	other := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: c}\n")
	if !sameContent(live, same) {
		t.Error("the session's marks and server fields count as a change")
	}
	if sameContent(live, other) {
		t.Error("a changed value counts as the same")
	}
}

func TestForCreateJob(t *testing.T) {
	j := obj(t, `apiVersion: batch/v1
kind: Job
metadata: {name: m, uid: u1, ownerReferences: [{name: x}]}
spec:
  selector: {matchLabels: {batch.kubernetes.io/controller-uid: u1}}
  template:
    metadata: {labels: {batch.kubernetes.io/controller-uid: u1, job-name: m, app: m}}
    spec: {containers: [{name: m, image: x}]}
`)
	c := forCreate(j)
	if c.GetUID() != "" || c.GetOwnerReferences() != nil || c.Object["spec"].(map[string]any)["selector"] != nil {
		t.Fatalf("not fit to create: %v", c.Object)
	}
	if l := c.Object["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any); len(l) != 1 || l["app"] != "m" {
		t.Fatalf("template labels %v", l)
	}
	if j.GetUID() != "u1" {
		t.Fatal("forCreate changed its input")
	}
}

func TestDevOnly(t *testing.T) {
	d := obj(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - {name: a, command: [/hotpod/agent, --, /hotpod/app/a], args: [--old], livenessProbe: {tcpSocket: {port: 1}}, readinessProbe: {tcpSocket: {port: 1}}}
      - {name: b, args: [--keep], livenessProbe: {tcpSocket: {port: 1}}}
`)
	devOnly(d)
	cs := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
	a, b := cs[0].(map[string]any), cs[1].(map[string]any)
	if a["args"] != nil || a["livenessProbe"] != nil || a["readinessProbe"] == nil {
		t.Errorf("agent container %v", a)
	}
	if b["args"] == nil || b["livenessProbe"] == nil {
		t.Errorf("a container without the agent was changed: %v", b)
	}
}

func TestReplaceable(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", nil)
	for _, tc := range []struct {
		group, kind string
		err         error
		want        bool
	}{
		{"", "Pod", invalid, true},
		{"batch", "Job", invalid, true},
		{"apps", "Deployment", invalid, false},
		{"example.com", "Pod", invalid, false},
		{"", "Pod", errors.New("connection refused"), false},
	} {
		if got := replaceable(Applied{GVR: schema.GroupVersionResource{Group: tc.group}, Kind: tc.kind}, tc.err); got != tc.want {
			t.Errorf("%s/%s %v: %v, want %v", tc.group, tc.kind, tc.err, got, tc.want)
		}
	}
}
