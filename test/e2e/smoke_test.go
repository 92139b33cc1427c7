package e2e_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hotpod/hotpod/internal/e2e"
)

// The cluster works end to end: an image built here and pushed to the local registry, a
// 2-replica Deployment rolled out, and HTTP answered by each pod through a port-forward.
func TestSmokeDeploymentAnswersThroughPortForward(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	for _, base := range []string{"scratch", env.Registry + "/hotpod/base-nonroot:latest"} {
		ref := env.BuildImage(t, "./examples/hello", base)
		name := "hello-scratch"
		if base != "scratch" {
			name = "hello-nonroot"
		}
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						TerminationGracePeriodSeconds: ptr.To[int64](2),
						Containers: []corev1.Container{{
							Name: "hello", Image: ref,
							Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
							ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
						}},
					},
				},
			},
		}
		if _, err := env.Kube.Clientset.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		env.WaitRollout(t, ns, name, 3*time.Minute)
		pods := env.Pods(t, ns, "app="+name)
		if len(pods) != 2 {
			t.Fatalf("%s: %d pods, want 2", name, len(pods))
		}
		for _, p := range pods {
			code, body := env.Get(t, ns, p.Name, 8080, "/")
			if code != 200 || !strings.Contains(body, "hello from hotpod") {
				t.Fatalf("pod %s answered %d %q", p.Name, code, body)
			}
		}
	}
}
