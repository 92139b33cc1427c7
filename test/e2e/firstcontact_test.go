package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
)

const firstContactManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ko://example.com/hello
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: %s
`

// The mistakes a newcomer makes first, each reported within seconds with what the app or the
// cluster said, never a silent wait for the rollout timeout: an app that exits at start (its
// exit code and stderr), a readiness probe on a wrong path (the answer, counted), a probe whose
// command is not in the image (can never pass), and `hotpod deploy` of an app that crashes (a
// crash loop ends the wait with the app's last lines).
func TestFirstContactMistakesAreReportedAtOnce(t *testing.T) {
	env := e2e.Setup(t)
	base := "--base-image=" + env.Registry + "/hotpod/base-nonroot:latest"
	// hello answers every path; with exactRoot it answers only "/" (and 404 elsewhere).
	const exactRoot = "exact root"
	crashAtStart := `addr := ":8080"
	if os.Getenv("DB_URL") == "" {
		fmt.Fprintln(os.Stderr, "DB_URL is not set")
		os.Exit(3)
	}`
	for _, tc := range []struct {
		name, probe, patch string
		kind               string
		check              func(e report.Event) error
	}{
		{"crash at start", "{httpGet: {path: /healthz, port: http}, periodSeconds: 1}", crashAtStart, report.KindCrashed, func(e report.Event) error {
			if c := e.Crashed; c.ExitCode != 3 || !strings.Contains(strings.Join(c.LastOutput, "\n"), "DB_URL is not set") {
				return fmt.Errorf("crashed %+v: want exit code 3 and the app's stderr", e)
			}
			return nil
		}},
		{"probe on a wrong path", "{httpGet: {path: /nope, port: http}, periodSeconds: 1}", exactRoot, report.KindProbeFailed, func(e report.Event) error {
			if p := e.ProbeFailed; !strings.Contains(p.Error, "404") || !strings.Contains(p.Probe, "/nope") || p.Failures < 1 {
				return fmt.Errorf("probe_failed %+v: want the 404 of GET /nope", e)
			}
			return nil
		}},
		{"probe command not in the image", "{exec: {command: [podcli, ready]}, periodSeconds: 1}", "", report.KindProbeFailed, func(e report.Event) error {
			if p := e.ProbeFailed; !p.Permanent || !strings.Contains(p.Error, "podcli") {
				return fmt.Errorf("probe_failed %+v: want a probe that can never pass, naming podcli", e)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			dir := helloProject(t, map[string]string{"k8s/app.yaml": fmt.Sprintf(firstContactManifest, tc.probe)})
			if tc.patch == exactRoot {
				(&devSession{t: t, dir: dir}).edit(`mux.HandleFunc("/", `, `mux.HandleFunc("/{$}", `)
			} else if tc.patch != "" {
				(&devSession{t: t, dir: dir}).edit(`addr := ":8080"`, tc.patch)
			}
			start := time.Now()
			s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, base)
			e := s.awaitAny(tc.kind)
			if err := tc.check(e); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: reported %s after %s (the rollout timeout is 5 min)", tc.name, tc.kind, time.Since(start).Round(100*time.Millisecond))
			s.interrupt()
		})
	}

	t.Run("deploy of an app that crashes", func(t *testing.T) {
		ns := env.Namespace(t)
		dir := helloProject(t, map[string]string{"k8s/app.yaml": fmt.Sprintf(firstContactManifest, "{tcpSocket: {port: http}}")})
		(&devSession{t: t, dir: dir}).edit(`addr := ":8080"`, crashAtStart)
		start := time.Now()
		out, err := hotpod(t, env, dir, "deploy", "-f", "k8s", "-n", ns, base)
		if err == nil || !strings.Contains(out, "keeps crashing (exit code 3") || !strings.Contains(out, "DB_URL is not set") {
			t.Fatalf("hotpod deploy: %v\n%s\nwant a failure naming the crash loop with the app's last lines", err, out)
		}
		t.Logf("deploy failed after %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	})
}
