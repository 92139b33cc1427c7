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
func procStat(t *testing.T, pid int) (cpu time.Duration, peakMiB float64) {
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
	dir := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/svcs\n\ngo 1.24\n", "shared/shared.go": sharedLib}
	var manifests strings.Builder
	for i := range services {
		name := fmt.Sprintf("svc%d", i+1)
		files[name+"/main.go"] = fmt.Sprintf(sharedMain, name)
		fmt.Fprintf(&manifests, scaleManifest, name, replicas)
	}
	files["k8s/svcs.yaml"] = manifests.String()
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	s := runDev(t, env, ns, dir, "-f", "k8s", "-n", ns, "--base-image=scratch")
	iter := 0
	for _, e := range s.await(report.KindReady, services*replicas) {
		iter = max(iter, e.Ready.Iteration)
	}
	t.Logf("%d pods ready %s after the start", services*replicas, time.Since(t0).Round(time.Second))
	cpu0, _ := procStat(t, s.cmd.Process.Pid)

	var perPod, slowest []float64
	var sent int
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
		seen := map[string]bool{}
		worst := 0.0
		deadline := time.After(5 * time.Minute)
		for len(seen) < services*replicas {
			select {
			case e, ok := <-s.events:
				if !ok {
					t.Fatal("hotpod exited")
				}
				switch e.Kind {
				case report.KindReady:
					if e.Ready.Iteration > iter && !seen[e.Ready.Pod] {
						seen[e.Ready.Pod] = true
						perPod = append(perPod, e.Ready.EditToReady)
						worst = max(worst, e.Ready.EditToReady)
						sent += e.Ready.BytesSent
					}
				case report.KindFailed, report.KindCrashed, report.KindBuildFailed:
					t.Fatalf("edit %d: %s", i+1, line(e))
				}
			case <-deadline:
				t.Fatalf("edit %d reached %d of %d pods in 5 minutes", i+1, len(seen), services*replicas)
			}
		}
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
		"the CLI's own CPU over the edits %s (the go builds not counted), its peak RSS %.1f MiB",
		edits, services, services*replicas, bench.Median(perPod), slices.Max(perPod), bench.Median(slowest), slices.Max(slowest),
		sent, float64(sent)/edits/1e6, (cpu1 - cpu0).Round(10*time.Millisecond), peak)
	s.interrupt()
}
