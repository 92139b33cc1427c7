package e2e_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/bench"
	"github.com/hotpod/hotpod/internal/bench/link"
	"github.com/hotpod/hotpod/internal/e2e"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/testutil"
)

// BenchmarkDevLoop measures edit→ready on examples/hello: in the cluster (2 replicas, scratch
// base, every pod's event counted) and, in the same run, the local floor (`hotpod dev --local`:
// the same go build and a local process restart). Each b.N is one edit; the reported numbers are
// medians (bench.Median, as `hotpod bench` computes them) of hotpod's own events, and after each
// edit every pod (or the local app) must answer with it. docs/benchmarks.md records a run.
//
//	HOTPOD_E2E=1 go test -run '^$' -bench DevLoop -benchtime 10x ./test/e2e/
func BenchmarkDevLoop(b *testing.B) {
	b.Run("local", func(b *testing.B) { benchEdits(b, nil, 1) })
	b.Run("cluster", func(b *testing.B) {
		if os.Getenv("HOTPOD_E2E") != "1" {
			b.Skip("set HOTPOD_E2E=1 with the cluster up")
		}
		benchEdits(b, benchEnv(b), 2)
	})
}

// BenchmarkScale is BenchmarkDevLoop's cluster case for 1, 3, 10 and 30 replicas of hello, and
// for 3 services that import one package `shared` (sharedProject), at 1 and 10 replicas each,
// where every edit is to the shared package: it reaches all three (issue 14, item 5).
// edit-to-ready-ms and the phases are medians over every pod's ready event for the edit;
// all-ready-ms is the median over edits of the slowest pod's edit→ready, when the whole edit is
// live. Each edit waits for one ready event per pod for a newer iteration of its service, and
// then every pod must answer with the edit. hack/scalechart draws the output.
//
//	HOTPOD_E2E=1 go test -run '^$' -bench Scale -benchtime 5x -timeout 60m ./test/e2e/
func BenchmarkScale(b *testing.B) {
	if os.Getenv("HOTPOD_E2E") != "1" {
		b.Skip("set HOTPOD_E2E=1 with the cluster up")
	}
	for _, pods := range []int{1, 3, 10, 30} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) { benchEdits(b, benchEnv(b), pods) })
	}
	b.Run("services=3", func(b *testing.B) {
		for _, replicas := range []int{1, 10} {
			b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) { benchSharedEdits(b, benchEnv(b), 3, replicas) })
		}
	})
}

func benchEnv(b *testing.B) *e2e.Env {
	env, err := e2e.Connect(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return env
}

// benchWorkload is a project a benchmark edits and how its pods show an edit arrived.
type benchWorkload struct {
	dir      string // the project, with its manifests under k8s/ for the cluster
	selector string // its pods' labels
	pods     int    // the ready events one edit makes: one per pod (the local app: 1)
	// edit writes edit i (from 0) into dir and returns what every pod's answer must end with.
	edit func(i int) string
}

// benchEdits times b.N edits of hello's greeting: in the cluster at pods replicas when env is
// set, else with --local.
func benchEdits(b *testing.B, env *e2e.Env, pods int) {
	dir := helloProject(b, nil)
	if env != nil {
		writeFiles(b, dir, map[string]string{"k8s/hello.yaml": fmt.Sprintf(helloManifest, pods, false)})
	}
	text := helloSource(b)
	benchLoop(b, env, benchWorkload{dir: dir, selector: "app=hello", pods: pods, edit: func(i int) string {
		greeting := fmt.Sprintf("hello from hotpod, edit %d", i)
		replaceFile(b, filepath.Join(dir, "main.go"), strings.Replace(text, "hello from hotpod", greeting, 1))
		return greeting
	}})
}

// benchSharedEdits times b.N edits of the package `shared` that each of services services
// (replicas pods each) imports: one edit, one build per service, every pod's ready event.
func benchSharedEdits(b *testing.B, env *e2e.Env, services, replicas int) {
	dir := sharedProject(b, services, func(name string) string { return fmt.Sprintf(scaleManifest, name, replicas) })
	benchLoop(b, env, benchWorkload{dir: dir, selector: "scale=yes", pods: services * replicas, edit: func(i int) string {
		stamp := fmt.Sprintf("edit %d", i+1)
		replaceFile(b, filepath.Join(dir, "shared", "shared.go"), strings.Replace(sharedLib, "edit 0", stamp, 1))
		return stamp
	}})
}

// replaceFile writes content to path as an editor saves: a new file renamed over the old one.
func replaceFile(b *testing.B, path, content string) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	must(b, os.WriteFile(tmp, []byte(content), 0o644))
	must(b, os.Rename(tmp, path))
}

// benchLoop runs hotpod dev on w (in the cluster when env is set, else --local) and times b.N
// edits: each waits for every pod's ready event for the edit (awaitEdit), then every pod must
// answer with it. It reports medians (bench.Median, as `hotpod bench` computes them) of hotpod's
// own events: per pod, and all-ready-ms (the slowest pod per edit); and the CLI's peak memory.
func benchLoop(b *testing.B, env *e2e.Env, w benchWorkload) {
	var cmd *exec.Cmd
	var ns string
	port := testutil.FreePort(b) // the local app's
	if env == nil {
		cmd = exec.Command(hotpodBin, "dev", "--local", "--output", "json", "--ready", fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	} else {
		var cleanup func()
		var err error
		ns, cleanup, err = env.TempNamespace(b.Context(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer cleanup()
		cmd = exec.Command(hotpodBin, "dev", "-f", "k8s", "-n", ns, "--output", "json",
			"--default-repo", env.Registry+"/bench", "--base-image", "scratch")
		cmd.Env = os.Environ()
	}
	cmd.Dir = w.dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = nil
	must(b, cmd.Start())
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	events := testutil.Events(b, out, nil)
	at := map[string]reached{}
	land := func(what string) []report.Ready {
		ready, late, err := awaitEdit(events, w.pods, at, 5*time.Minute)
		for _, e := range late {
			b.Logf("%s: the user saw: %s", what, line(e))
		}
		if err != nil {
			b.Fatalf("%s: %v", what, err)
		}
		return ready
	}
	// answers is what the app says now: the local process, or every pod through a port-forward.
	answers := func() []string {
		if env == nil {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				b.Fatalf("the local app: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return []string{fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))}
		}
		var out []string
		for _, p := range env.Pods(b, ns, w.selector) {
			code, body := env.Get(b, ns, p.Name, 8080, "/")
			out = append(out, fmt.Sprintf("%d %s", code, strings.TrimSpace(body)))
		}
		return out
	}
	land("the start")
	var total, all, build, ship, restart, ready, other, bytes []float64
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(300 * time.Millisecond) // a quiet editor between saves
		want := w.edit(i)
		slowest := 0.0
		for _, e := range land(fmt.Sprintf("edit %d", i)) {
			slowest = max(slowest, e.EditToReady)
			// the phases that add up with the others: debounce, build slot, read + hash, the
			// pod's queue, computing the patch
			other = append(other, e.DebounceMS+e.BuildWaitMS+e.ReadMS+e.QueueMS+e.PatchMS)
			total = append(total, e.EditToReady)
			build = append(build, e.BuildMS)
			ship = append(ship, e.ShipMS)
			restart = append(restart, e.RestartMS)
			ready = append(ready, e.ReadyMS)
			bytes = append(bytes, float64(e.BytesSent))
		}
		all = append(all, slowest)
		// hotpod's events are its own word: the app must answer with the edit.
		b.StopTimer()
		got := answers()
		if len(got) != w.pods {
			b.Fatalf("edit %d: %d answers, want %d: %v", i, len(got), w.pods, got)
		}
		for _, a := range got {
			if !strings.HasPrefix(a, "200 ") || !strings.HasSuffix(" "+a, " "+want) {
				b.Fatalf("edit %d: the app answers %q, want 200 and an answer ending with %q", i, a, want)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	_, peak := procStat(b, cmd.Process.Pid)
	b.ReportMetric(bench.Median(total), "edit-to-ready-ms")
	b.ReportMetric(bench.Median(all), "all-ready-ms")
	b.ReportMetric(bench.Median(other), "other-ms")
	b.ReportMetric(bench.Median(build), "build-ms")
	b.ReportMetric(bench.Median(ship), "ship-ms")
	b.ReportMetric(bench.Median(restart), "restart-ms")
	b.ReportMetric(bench.Median(ready), "ready-ms")
	b.ReportMetric(bench.Median(bytes), "bytes-per-pod")
	b.ReportMetric(peak, "cli-peak-rss-MiB")
	b.ReportMetric(0, "ns/op")
}

// reached is where a service's pods got at the previous edit: the iteration and its binary.
type reached struct {
	iter int
	sha  string
}

// awaitEdit reads events until each of n pods has a ready event for a newer iteration of its
// service than at holds (what the previous edit reached; updated on return), of another binary
// (a second build of the previous edit, late, makes the same one: it is not this edit's), and returns
// those events, the first per pod, with the ship_slow and ship_failed lines seen on the way:
// under load an agent may miss a call's bound and the loop then catches the pod up. Counting
// pods, not events, is the point: a pod that reports twice does not stand in for one that
// never gets the edit. A crash, a build failure, two builds of one service for one edit
// (pods on different iterations: the timings would mix them), the end of the events or the
// timeout is an error that says which pods were ready.
func awaitEdit(events <-chan report.Event, n int, at map[string]reached, timeout time.Duration) (ready []report.Ready, late []report.Event, err error) {
	seen := map[string]bool{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(ready) < n {
		select {
		case e, ok := <-events:
			if !ok {
				return ready, late, fmt.Errorf("hotpod exited: %s", readyOf(ready, n))
			}
			switch e.Kind {
			case report.KindReady:
				r := *e.Ready
				prev := at[r.Service]
				if key := r.Service + "/" + r.Pod; r.Iteration > prev.iter && (prev.sha == "" || r.SHA256 != prev.sha) && !seen[key] {
					seen[key] = true
					ready = append(ready, r)
				}
			case report.KindFailed, report.KindSlow:
				late = append(late, e)
			case report.KindCrashed, report.KindBuildFailed:
				return ready, late, fmt.Errorf("%s; %s", line(e), readyOf(ready, n))
			}
		case <-deadline.C:
			return ready, late, fmt.Errorf("%s within %s", readyOf(ready, n), timeout)
		}
	}
	now := map[string]reached{}
	for _, r := range ready {
		if got, ok := now[r.Service]; ok && got.iter != r.Iteration {
			return ready, late, fmt.Errorf("%s: pods ready on iterations %d and %d: two builds for one edit", r.Service, got.iter, r.Iteration)
		}
		now[r.Service] = reached{r.Iteration, r.SHA256}
	}
	maps.Copy(at, now)
	return ready, late, nil
}

// readyOf says how many of n pods are ready, and which.
func readyOf(ready []report.Ready, n int) string {
	var pods []string
	for _, r := range ready {
		pods = append(pods, fmt.Sprintf("%s/%s@%d", r.Service, r.Pod, r.Iteration))
	}
	return fmt.Sprintf("%d of %d pods ready [%s]", len(ready), n, strings.Join(pods, " "))
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// The bench's other strategies (not in --quick) complete with sane numbers on hello: incluster
// (the module and this machine's toolchain in a container, compiled there) and the Dockerfile
// variants (fresh context, empty or copied build cache, push, roll). docker-vendor is
// docker-vendor-w without -w (TestDockerContexts): its cold builds are left out to save CI a
// minute. Speed is not asserted.
func TestBenchOtherStrategies(t *testing.T) {
	env := e2e.Setup(t)
	root, err := gopkg.ModuleRoot(t.Context(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var progress testutil.SyncBuffer
	strategies := []string{bench.InCluster, bench.DockerVendorW, bench.DockerGocache}
	rs, err := bench.Run(t.Context(), bench.Config{Workloads: []string{"hello"}, Strategies: strategies,
		Links: []link.Link{{}}, Iterations: 1, Repo: env.Registry + "/e2e-bench", Base: "scratch",
		RepoRoot: root, Kube: env.Kube, Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if err := bench.Sane(rs, 1); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	for i, s := range strategies {
		if rs[i].Strategy != s {
			t.Fatalf("record %d is %s, want %s", i, rs[i].Strategy, s)
		}
	}
	if rs[0].BytesSent > 64<<10 {
		t.Errorf("incluster sent %d bytes per edit: it should send the edited source file only", rs[0].BytesSent)
	}
}

// awaitEdit counts pods, not events, on the iteration after the one they were at: the benchmarks'
// numbers are only every pod's if it does. No cluster: the events are made here.
func TestAwaitEdit(t *testing.T) {
	ready := func(svc, pod string, it int, ms float64) report.Event {
		return report.Event{Kind: report.KindReady, Ready: &report.Ready{Service: svc, Pod: pod, Iteration: it, EditToReady: ms, SHA256: fmt.Sprint("build ", it)}}
	}
	rebuilt := ready("a", "a-1", 2, 5) // the previous edit built again, late: its binary, iteration 2
	rebuilt.Ready.SHA256 = "build 1"
	slow := report.Event{Kind: report.KindSlow, Slow: &report.Slow{Service: "a", Pod: "a-1", Iteration: 2}}
	crashed := report.Event{Kind: report.KindCrashed, Crashed: &report.Crashed{Service: "a", Pod: "a-2", Iteration: 2, ExitCode: 2}}
	for _, c := range []struct {
		name   string
		n      int
		events []report.Event
		want   string // the pods counted, or the error's start
		late   int
		iter   int // service a's iteration after the edit; 2 when 0
	}{
		{"every pod once", 3, []report.Event{ready("a", "a-1", 2, 10), ready("a", "a-2", 2, 20), ready("a", "a-3", 2, 30)}, "a-1 a-2 a-3", 0, 0},
		{"the previous edit's late events do not count", 2, []report.Event{ready("a", "a-1", 1, 5), ready("a", "a-1", 2, 10), ready("a", "a-2", 1, 5), ready("a", "a-2", 2, 20)}, "a-1 a-2", 0, 0},
		{"a pod that never gets the edit, another that reports twice", 3, []report.Event{ready("a", "a-1", 2, 10), ready("a", "a-1", 2, 11), ready("a", "a-2", 2, 20)}, "hotpod exited: 2 of 3 pods ready", 0, 0},
		{"a late pod is caught up", 2, []report.Event{ready("a", "a-2", 2, 20), slow, ready("a", "a-1", 2, 900)}, "a-2 a-1", 1, 0},
		{"services on their own iterations", 2, []report.Event{ready("a", "p", 2, 10), ready("b", "p", 8, 20)}, "p p", 0, 0},
		{"a crash", 2, []report.Event{ready("a", "a-1", 2, 10), crashed}, "crashed ", 0, 0},
		{"two builds for one edit", 2, []report.Event{ready("a", "a-1", 2, 10), ready("a", "a-2", 3, 20)}, "a: pods ready on iterations 2 and 3", 0, 0},
		{"a late second build of the previous edit does not count", 2, []report.Event{rebuilt, ready("a", "a-1", 3, 10), ready("a", "a-2", 3, 20)}, "a-1 a-2", 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := make(chan report.Event, len(c.events))
			for _, e := range c.events {
				ch <- e
			}
			close(ch)
			at := map[string]reached{"a": {1, "build 1"}, "b": {7, "build 7"}}
			got, late, err := awaitEdit(ch, c.n, at, time.Minute)
			if len(late) != c.late {
				t.Errorf("%d late lines, want %d", len(late), c.late)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), c.want) {
					t.Fatalf("error %q, want one starting with %q", err, c.want)
				}
				return
			}
			var pods []string
			for _, r := range got {
				pods = append(pods, r.Pod)
			}
			if strings.Join(pods, " ") != c.want {
				t.Fatalf("counted %v, want %s", pods, c.want)
			}
			if want := max(c.iter, 2); at["a"] != (reached{want, fmt.Sprint("build ", want)}) {
				t.Errorf("service a at %+v after the edit, want iteration %d", at["a"], want)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		ch := make(chan report.Event, 1)
		ch <- ready("a", "a-1", 2, 10)
		_, _, err := awaitEdit(ch, 2, map[string]reached{"a": {1, "build 1"}}, 10*time.Millisecond)
		if err == nil || !strings.HasPrefix(err.Error(), "1 of 2 pods ready [a/a-1@2] within 10ms") {
			t.Fatalf("error %v, want 1 of 2 pods ready within the timeout", err)
		}
	})
}
