package e2e_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/manifest"
)

// hotpod deploy applies the manifests once: the ko:// image built and replaced by its digest,
// the container's own command (no agent), the rollout awaited, the objects left in place.
func TestDeploy(t *testing.T) {
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := helloProject(t, map[string]string{"k8s/hello.yaml": fmt.Sprintf(helloManifest, 2, true)})
	writeFiles(t, dir, map[string]string{"main.go": strings.Replace(helloSource(t), `"hello from hotpod`, `"deployed by hotpod`, 1)})
	cmd := exec.CommandContext(t.Context(), hotpodBin, "deploy", "-f", "k8s", "-n", ns,
		"--default-repo", env.Registry+"/e2e", "--base-image", env.Registry+"/hotpod/base-nonroot:latest")
	cmd.Dir = dir
	cmd.Env = hotpodEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hotpod deploy: %v\n%s", err, out)
	}
	for _, want := range []string{"applied deployment/hello", "applied service/hello", "deployed 2 objects"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("hotpod deploy said nothing of %q:\n%s", want, out)
		}
	}
	// Rolled out when hotpod returned (one look, no waiting here), and the objects stay.
	d, err := env.Kube.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the deployment after hotpod deploy: %v", err)
	}
	if st := d.Status; d.Generation > st.ObservedGeneration || st.Replicas != 2 || st.UpdatedReplicas != 2 || st.ReadyReplicas != 2 {
		t.Fatalf("hotpod deploy returned before the rollout: generation %d, status %+v", d.Generation, st)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, env.Registry+"/e2e/hello@sha256:") {
		t.Errorf("image %s is not the pushed digest reference", c.Image)
	}
	if len(c.Command) > 0 && c.Command[0] == manifest.AgentPath {
		t.Errorf("deploy put the container under the agent: %v", c.Command)
	}
	if c.LivenessProbe == nil {
		t.Error("deploy dropped the liveness probe: only dev mode does")
	}
	pods := env.Pods(t, ns, "app=hello")
	if len(pods) != 2 {
		t.Fatalf("%d pods, want 2", len(pods))
	}
	for _, p := range pods {
		if code, body := env.Get(t, ns, p.Name, 8080, "/"); code != 200 || !strings.Contains(body, "deployed by hotpod") {
			t.Errorf("pod %s answered %d %q", p.Name, code, body)
		}
	}
}
