package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/session"
)

// runStatus runs `hotpod status` in dir with args and returns its stdout.
func runStatus(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), hotpodBin, append([]string{"status"}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hotpod status %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// statusJSON is `hotpod status -n ns -o json`'s sessions.
func statusJSON(t *testing.T, dir, ns string) []session.Status {
	t.Helper()
	var out struct{ Sessions []session.Status }
	if err := json.Unmarshal([]byte(runStatus(t, dir, "-n", ns, "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out.Sessions
}

// hotpod status on a real session: while hotpod runs, every pod is on the current build and the
// build moves with each edit; once hotpod is killed the session is left over, and a pod that
// comes back from the image is flagged NOT current. -f picks the session of these manifests.
func TestStatusFollowsTheSessionsBuilds(t *testing.T) {
	env := e2e.Setup(t)
	s := startDev(t, env, 2, "scratch", false)
	first := s.await(report.KindReady, 2)
	const service = "ko://example.com/hello"

	// sessionOn is the one session in the namespace, which must be alive or not, with two agents
	// and want as its build.
	sessionOn := func(want *report.Ready, alive bool) (session.Status, error) {
		ss := statusJSON(t, s.dir, s.ns)
		if len(ss) != 1 || ss[0].Alive != alive || len(ss[0].Agents) != 2 {
			return session.Status{}, fmt.Errorf("sessions %+v, want one, alive %v, with 2 agents", ss, alive)
		}
		b := ss[0].Builds[service]
		if b.SHA256 != want.SHA256 || b.Iteration != want.Iteration || time.Since(b.At) > 10*time.Minute {
			return ss[0], fmt.Errorf("the session's build of %s is %+v, want %s from iteration %d", service, b, want.SHA256, want.Iteration)
		}
		return ss[0], nil
	}
	check := func(want *report.Ready, alive bool) session.Status {
		t.Helper()
		st, err := sessionOn(want, alive)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := check(first[0].Ready, true)
	for _, a := range st.Agents {
		if !a.Current || a.SHA256 != first[0].Ready.SHA256 || a.State != "ready" || a.Service != service || a.Error != "" {
			t.Fatalf("agent %+v, want ready on the image's build %s", a, first[0].Ready.SHA256)
		}
	}

	s.edit("hello from hotpod", "hello from the status test")
	edited := s.await(report.KindReady, 2)
	if edited[0].Ready.SHA256 == first[0].Ready.SHA256 {
		t.Fatal("the edit built the same binary")
	}
	st = check(edited[0].Ready, true)
	for _, a := range st.Agents {
		if !a.Current || a.SHA256 != edited[0].Ready.SHA256 || a.Restarts < 1 {
			t.Fatalf("agent %+v after the edit, want current on %s and restarted", a, edited[0].Ready.SHA256)
		}
	}
	text := runStatus(t, s.dir, "-n", s.ns)
	if !strings.Contains(text, "alive: hotpod") || strings.Count(text, "current: iteration 2") != 2 || strings.Contains(text, "NOT current") {
		t.Fatalf("status text:\n%s", text)
	}

	// Only this session's manifests pick it.
	if got := runStatus(t, s.dir, "-n", s.ns, "-f", "k8s"); !strings.Contains(got, "session "+st.ID) {
		t.Fatalf("status -f k8s:\n%s", got)
	}
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runStatus(t, s.dir, "-n", s.ns, "-f", other); !strings.Contains(got, "no hotpod dev session in namespace "+s.ns+" for these manifests") {
		t.Fatalf("status -f of other manifests:\n%s", got)
	}

	// hotpod killed: the session is left over; a replaced pod starts from the image, and nothing
	// brings it to the session's build.
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	old := env.Pods(t, s.ns, "app=hello")[0].Name
	zero := int64(0)
	if err := env.Kube.Clientset.CoreV1().Pods(s.ns).Delete(t.Context(), old, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	env.WaitRollout(t, s.ns, "hello", 2*time.Minute)
	var replaced session.AgentStatus
	env.Eventually(t, 2*time.Minute, "the replacement pod's agent answers", func() error {
		st, err := sessionOn(edited[0].Ready, false)
		if err != nil {
			return err
		}
		replaced = session.AgentStatus{}
		for _, a := range st.Agents {
			if a.Pod == old {
				return fmt.Errorf("pod %s is still listed", old)
			}
			if !a.Current {
				replaced = a
			}
			if a.Error != "" {
				return fmt.Errorf("agent of %s: %s", a.Pod, a.Error)
			}
		}
		if replaced.Pod == "" {
			return fmt.Errorf("no agent off the current build: %+v", st.Agents)
		}
		return nil
	})
	if replaced.SHA256 != first[0].Ready.SHA256 {
		t.Fatalf("the replacement runs %s, want the image's %s", replaced.SHA256, first[0].Ready.SHA256)
	}
	text = runStatus(t, s.dir, "-n", s.ns)
	for _, want := range []string{"left over", "the next hotpod dev on these manifests takes it over", "NOT current", replaced.Pod} {
		if !strings.Contains(text, want) {
			t.Errorf("status text lacks %q:\n%s", want, text)
		}
	}
}
