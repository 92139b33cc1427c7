package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/report"
)

const scaleManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s, scale: "yes"}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: ko://example.com/svcs/%[1]s
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
        resources: {requests: {cpu: 1m, memory: 8Mi}}
---
`

// procStat reads a process's own CPU time (user+system, not its children's: the go builds) and
// its peak resident set.
func procStat(t testing.TB, pid int) (cpu time.Duration, peakMiB float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:])) // fields from 3 on
	ut, _ := strconv.Atoi(f[11])                                             // utime, field 14
	st, _ := strconv.Atoi(f[12])                                             // stime, field 15
	cpu = time.Duration(ut+st) * 10 * time.Millisecond                       // USER_HZ 100
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			peakMiB = float64(kb) / 1024
		}
	}
	return cpu, peakMiB
}

// 30 pods of 3 services (10 replicas each) in one session: edits to a package all three import
// reach every pod; the figures (edit→ready per pod, the CLI's own CPU and peak memory, bytes
// sent) are logged for docs/reliability.md. It takes minutes on a shared 2-core machine: run it
// on purpose, with HOTPOD_SCALE=1.
func TestScaleThirtyPods(t *testing.T) {
	if os.Getenv("HOTPOD_SCALE") != "1" {
		t.Skip("set HOTPOD_SCALE=1 (and HOTPOD_E2E=1 with the cluster up) to measure 30 pods")
	}
	const services, replicas, edits = 3, 10, 3
	env := e2e.Setup(t)
	ns := env.Namespace(t)
	dir := sharedProject(t, services, func(name string) string { return fmt.Sprintf(scaleManifest, name, replicas) })
	t0 := time.Now()
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image=scratch")
	ready, late := awaitPods(s, services*replicas, 0)
	iter := 0
	for _, e := range ready {
		iter = max(iter, e.Iteration)
	}
	if len(late) > 0 {
		t.Logf("while starting, the user saw:\n  %s", lines(late))
	}
	cpu0, peak0 := procStat(t, s.cmd.Process.Pid)
	t.Logf("%d pods ready %s after the start; the CLI's peak RSS so far %.1f MiB, its CPU %s",
		services*replicas, time.Since(t0).Round(time.Second), peak0, cpu0.Round(10*time.Millisecond))

	var perPod, slowest []float64
	var sent, lateLines int
	for i := range edits {
		time.Sleep(300 * time.Millisecond)
		stamp := fmt.Sprintf("edit %d", i+1)
		tmp := filepath.Join(dir, "shared", ".shared.go.tmp")
		if err := os.WriteFile(tmp, []byte(strings.Replace(sharedLib, "edit 0", stamp, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "shared", "shared.go")); err != nil {
			t.Fatal(err)
		}
		ready, late := awaitPods(s, services*replicas, iter)
		worst := 0.0
		for _, e := range ready {
			perPod = append(perPod, e.EditToReady)
			worst = max(worst, e.EditToReady)
			sent += e.BytesSent
		}
		if len(late) > 0 {
			t.Logf("edit %d: the user saw:\n  %s", i+1, lines(late))
		}
		lateLines += len(late)
		iter++
		slowest = append(slowest, worst)
		pods := env.Pods(t, ns, "scale=yes")
		if len(pods) != services*replicas {
			t.Fatalf("%d pods, want %d", len(pods), services*replicas)
		}
		// A sample (every pod costs a port-forward): one pod per service.
		sampled := map[string]bool{}
		for _, p := range pods {
			if sampled[p.Labels["app"]] {
				continue
			}
			sampled[p.Labels["app"]] = true
			if code, body := env.Get(t, ns, p.Name, 8080, "/"); code != 200 || !strings.HasSuffix(strings.TrimSpace(body), stamp) {
				t.Fatalf("edit %d: pod %s answers %d %q", i+1, p.Name, code, body)
			}
		}
	}
	cpu1, peak := procStat(t, s.cmd.Process.Pid)
	slices.Sort(perPod)
	t.Logf("%d edits to a package all %d services import, %d pods: edit→ready per pod median %.0f ms, max %.0f ms; "+
		"all pods ready (slowest pod per edit) median %.0f ms, max %.0f ms; bytes sent %d (%.1f MB per edit); "+
		"the CLI's own CPU over the edits %s (the go builds not counted), its peak RSS %.1f MiB; %d ship_slow/ship_failed lines",
		edits, services, services*replicas, bench.Median(perPod), slices.Max(perPod), bench.Median(slowest), slices.Max(slowest),
		sent, float64(sent)/edits/1e6, (cpu1 - cpu0).Round(10*time.Millisecond), peak, lateLines)
	s.interrupt()
}

// awaitPods reads events until n distinct pods are ready on an iteration above iter, and returns
// their ready events (the first per pod) and the ship_slow and ship_failed lines seen on the way:
// under load an agent may miss a call's bound, and the loop then catches the pod up; only a crash
// or a build failure fails the test.
func awaitPods(s *devSession, n, iter int) (ready []report.Ready, late []report.Event) {
	s.t.Helper()
	seen := map[string]bool{}
	deadline := time.After(5 * time.Minute)
	for len(seen) < n {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatal("hotpod exited")
			}
			switch e.Kind {
			case report.KindReady:
				if e.Ready.Iteration > iter && !seen[e.Ready.Pod] {
					seen[e.Ready.Pod] = true
					ready = append(ready, *e.Ready)
				}
			case report.KindFailed, report.KindSlow:
				late = append(late, e)
			case report.KindCrashed, report.KindBuildFailed:
				s.t.Fatalf("%s", line(e))
			}
		case <-deadline:
			s.t.Fatalf("%d of %d pods ready within 5 minutes; the user saw:\n  %s", len(seen), n, lines(late))
		}
	}
	return ready, late
}
