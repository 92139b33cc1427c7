package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

// BenchmarkSharedEdit measures an edit to a package every service imports: with 1 service and
// with 3 (one go build per service per edit, at most as many at once as the CPUs; one pod
// each, scratch base). Each b.N is one edit; all-ready-ms is the median over edits of the
// slowest service's edit→ready (when the whole edit is live), edit-to-ready-ms and build-ms the
// medians over every service's event. After each edit every pod must answer with it.
// docs/benchmarks.md records a run.
//
//	HOTPOD_E2E=1 go test -run '^$' -bench SharedEdit -benchtime 8x ./test/e2e/
func BenchmarkSharedEdit(b *testing.B) {
	if os.Getenv("HOTPOD_E2E") != "1" {
		b.Skip("set HOTPOD_E2E=1 with the cluster up")
	}
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) { benchShared(b, n) })
	}
}

const sharedLib = `package shared

// Stamp ends every answer: the edit the benchmark makes.
const Stamp = "edit 0"
`

const sharedMain = `package main

import (
	"fmt"
	"net/http"

	"example.com/svcs/shared"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "%%s %%s\n", %q, shared.Stamp) })
	http.ListenAndServe(":8080", nil)
}
`

const sharedManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s, bench: shared}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: ko://example.com/svcs/%[1]s
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
`

// sharedProject writes a module of services svc1, svc2, ... that all import its package shared,
// each with the manifest manifest gives it, into a fresh directory.
func sharedProject(t testing.TB, services int, manifest func(name string) string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"go.mod": "module example.com/svcs\n\ngo 1.24\n", "shared/shared.go": sharedLib}
	var manifests strings.Builder
	for i := range services {
		name := fmt.Sprintf("svc%d", i+1)
		files[name+"/main.go"] = fmt.Sprintf(sharedMain, name)
		manifests.WriteString(manifest(name))
	}
	files["k8s/svcs.yaml"] = manifests.String()
	writeFiles(t, dir, files)
	return dir
}

func benchShared(b *testing.B, services int) {
	env := benchEnv(b)
	dir := sharedProject(b, services, func(name string) string { return fmt.Sprintf(sharedManifest, name) })
	ns, cleanup, err := env.TempNamespace(b.Context(), "bench-shared")
	if err != nil {
		b.Fatal(err)
	}
	defer cleanup()
	cmd := exec.Command(hotpodBin, "dev", "-f", "k8s", "-n", ns, "--output", "json",
		"--default-repo", env.Registry+"/bench", "--base-image", "scratch")
	cmd.Dir, cmd.Env = dir, os.Environ()
	out, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	events := testutil.Events(b, out, nil)
	awaitReady := func() []report.Ready {
		var got []report.Ready
		deadline := time.After(5 * time.Minute)
		for len(got) < services {
			select {
			case e, ok := <-events:
				if !ok {
					b.Fatal("hotpod exited")
				}
				switch e.Kind {
				case report.KindReady:
					got = append(got, *e.Ready)
				case report.KindBuildFailed, report.KindCrashed, report.KindFailed:
					b.Fatalf("%v", e)
				}
			case <-deadline:
				b.Fatal("no ready event")
			}
		}
		return got
	}
	awaitReady()
	var all, total, build []float64
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(300 * time.Millisecond) // a quiet editor between saves
		stamp := fmt.Sprintf("edit %d", i+1)
		tmp := filepath.Join(dir, "shared", ".shared.go.tmp")
		must(b, os.WriteFile(tmp, []byte(strings.Replace(sharedLib, "edit 0", stamp, 1)), 0o644))
		must(b, os.Rename(tmp, filepath.Join(dir, "shared", "shared.go")))
		slowest := 0.0
		seen := map[string]bool{}
		for _, e := range awaitReady() {
			if seen[e.Service] {
				b.Fatalf("edit %d: two ready events for %s: one go build per service per edit", i, e.Service)
			}
			seen[e.Service] = true
			total = append(total, e.EditToReady)
			build = append(build, e.BuildMS)
			slowest = max(slowest, e.EditToReady)
		}
		all = append(all, slowest)
		b.StopTimer()
		pods := env.Pods(b, ns, "bench=shared")
		if len(pods) != services {
			b.Fatalf("edit %d: %d pods, want %d", i, len(pods), services)
		}
		for _, p := range pods {
			code, body := env.Get(b, ns, p.Name, 8080, "/")
			if code != 200 || !strings.HasSuffix(strings.TrimSpace(body), stamp) {
				b.Fatalf("edit %d: pod %s answers %d %q, want it to end with %q", i, p.Name, code, body, stamp)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(bench.Median(all), "all-ready-ms")
	b.ReportMetric(bench.Median(total), "edit-to-ready-ms")
	b.ReportMetric(bench.Median(build), "build-ms")
	b.ReportMetric(slices.Max(all), "max-all-ready-ms")
	b.ReportMetric(0, "ns/op")
}
