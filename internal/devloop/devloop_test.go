package devloop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/devloop"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/testutil"
	"github.com/hotpod/hotpod/internal/watch"
)

// These tests run the loop's rules against fakes of its three seams (builder, agent, source of
// edits). The real ones are crossed in internal/cli's and test/e2e's tests.

// binary makes a fake build: 256 KB of bytes fixed by seed, then a version mark, so that a
// delta between two of them is small and real.
func binary(version string) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 256<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return append(b, "version "+version...)
}

// fakeBuilder builds, in turn, the binaries it is given; a build whose entry is nil blocks
// until it is cancelled.
type fakeBuilder struct {
	mu        sync.Mutex
	builds    [][]byte
	calls     int
	started   chan int // the number of each build as it starts
	cancelled chan int // the number of each build that was cancelled
}

func (b *fakeBuilder) Build(ctx context.Context, out string) (build.Result, error) {
	b.mu.Lock()
	n := b.calls
	b.calls++
	var bin []byte
	if n < len(b.builds) {
		bin = b.builds[n]
	}
	b.mu.Unlock()
	if b.started != nil {
		b.started <- n
	}
	if bin == nil {
		<-ctx.Done()
		if b.cancelled != nil {
			b.cancelled <- n
		}
		return build.Result{}, ctx.Err()
	}
	if err := os.WriteFile(out, bin, 0o644); err != nil {
		return build.Result{}, err
	}
	return build.Result{Path: out, Duration: time.Millisecond}, nil
}

// fakeAgent applies patches as the agent does (delta.Apply: a patch against another base is
// refused with 409) and remembers what it ran.
type fakeAgent struct {
	mu    sync.Mutex
	bin   []byte
	kinds []delta.Kind // of every patch received, refused ones included
	ran   []string     // the version of each binary it ran, in order
	files map[string]string
	// before, when set, runs before each update is applied and may hold it (it gets the
	// patch's header) or fail it.
	before func(ctx context.Context, h delta.Header) error
	// down makes every call fail as an unreachable agent's does.
	down bool
	// pid is the app's process, a new one after each update (0: the agent does not say).
	pid int
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:1: connection refused")

func version(bin []byte) string {
	if len(bin) < 256<<10 {
		return "?"
	}
	return string(bin[256<<10+len("version "):])
}

func (a *fakeAgent) Status(ctx context.Context) (agentapi.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return agentapi.Status{}, errUnreachable
	}
	return agentapi.Status{SHA256: delta.Sum(a.bin).String(), State: agentapi.StateReady, PID: a.pid}, nil
}

func (a *fakeAgent) Update(ctx context.Context, patch []byte, p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	h, err := delta.ParseHeader(patch)
	if err != nil {
		return agentapi.UpdateResult{}, &agentapi.APIError{Code: 400, Message: err.Error()}
	}
	a.mu.Lock()
	a.kinds = append(a.kinds, h.Kind)
	down, before := a.down, a.before
	a.mu.Unlock()
	if down {
		return agentapi.UpdateResult{}, errUnreachable
	}
	if before != nil {
		if err := before(ctx, h); err != nil {
			return agentapi.UpdateResult{}, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	bin, err := delta.Apply(a.bin, patch)
	if errors.Is(err, delta.ErrWrongBase) {
		return agentapi.UpdateResult{}, &agentapi.APIError{Code: 409, Message: err.Error()}
	}
	if err != nil {
		return agentapi.UpdateResult{}, &agentapi.APIError{Code: 400, Message: err.Error()}
	}
	a.bin = bin
	a.ran = append(a.ran, version(bin))
	if a.pid != 0 {
		a.pid++
	}
	return agentapi.UpdateResult{Status: agentapi.Status{SHA256: delta.Sum(bin).String(), State: agentapi.StateReady, PID: a.pid}, RestartMS: 1}, nil
}

func (a *fakeAgent) Events(ctx context.Context, fn func(agentapi.Event)) error {
	<-ctx.Done()
	return ctx.Err()
}

func (a *fakeAgent) PutFile(ctx context.Context, path string, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return errUnreachable
	}
	if a.files == nil {
		a.files = map[string]string{}
	}
	a.files[path] = string(data)
	return nil
}

func (a *fakeAgent) DeleteFile(ctx context.Context, path string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return errUnreachable
	}
	delete(a.files, path)
	return nil
}

func (a *fakeAgent) setDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

func (a *fakeAgent) setBefore(f func(context.Context, delta.Header) error) {
	a.mu.Lock()
	a.before = f
	a.mu.Unlock()
}

func (a *fakeAgent) runs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return version(a.bin)
}

func (a *fakeAgent) history() ([]string, []delta.Kind) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ran...), append([]delta.Kind(nil), a.kinds...)
}

// fakeSource hands the loop the batches a test sends.
type fakeSource struct{ batches chan watch.Batch }

func (s *fakeSource) Batches() <-chan watch.Batch { return s.batches }
func (s *fakeSource) Update(watch.Set) error      { return nil }

// events reads the loop's JSON reports.
type events struct {
	t    *testing.T
	ch   <-chan report.Event
	seen []report.Event
	used []bool
}

func newEvents(t *testing.T) (*events, *report.Reporter) {
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	return &events{t: t, ch: testutil.Events(t, r, tlog{t})}, report.New(w, true)
}

// tlog writes to t's log.
type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimSuffix(b, []byte("\n")))
	return len(b), nil
}

// next returns the first event so far, or to come, that match accepts and that next has not
// returned before.
func (e *events) next(what string, match func(report.Event) bool) report.Event {
	e.t.Helper()
	timeout := time.After(time.Minute)
	for i := 0; ; i++ {
		for i == len(e.seen) {
			select {
			case ev := <-e.ch:
				e.seen, e.used = append(e.seen, ev), append(e.used, false)
			case <-timeout:
				e.t.Fatalf("no %s within a minute", what)
			}
		}
		if !e.used[i] && match(e.seen[i]) {
			e.used[i] = true
			return e.seen[i]
		}
	}
}

// none fails the test if an event so far that next has not returned has kind on pod.
func (e *events) none(kind, pod string) {
	e.t.Helper()
	for len(e.ch) > 0 {
		ev := <-e.ch
		e.seen, e.used = append(e.seen, ev), append(e.used, false)
	}
	for i, ev := range e.seen {
		if _, p, _ := ev.Where(); ev.Kind == kind && p == pod && !e.used[i] {
			e.t.Errorf("unexpected %+v", ev)
		}
	}
}

func is(kind, pod string, it int) func(report.Event) bool {
	return func(e report.Event) bool {
		_, p, i := e.Where()
		return e.Kind == kind && p == pod && i == it
	}
}

func on(kind, pod string) func(report.Event) bool {
	return func(e report.Event) bool {
		_, p, _ := e.Where()
		return e.Kind == kind && p == pod
	}
}

// setup makes a loop whose iteration 1 (the image) is v1, with one agent per name, each
// running what runs says (v1 when absent), which the loop knows.
func setup(t *testing.T, method ship.Method, b *fakeBuilder, runs map[string][]byte, names ...string) (*devloop.Loop, *events, map[string]*fakeAgent, map[string]*devloop.Target) {
	ev, rep := newEvents(t)
	l := &devloop.Loop{Service: "app", Builder: b, Shipper: ship.New(method), Report: rep, WorkDir: t.TempDir(),
		ReadyTimeout: time.Minute, SlowAfter: time.Hour}
	devloop.SetRetry(l, 10*time.Millisecond, 50*time.Millisecond)
	v1 := binary("1")
	l.Init(v1, time.Millisecond, time.Now())
	agents, targets := map[string]*fakeAgent{}, map[string]*devloop.Target{}
	var list []*devloop.Target
	for _, n := range names {
		a := &fakeAgent{bin: v1}
		if r, ok := runs[n]; ok {
			a.bin = r
		}
		agents[n] = a
		targets[n] = devloop.NewTarget(n, a, delta.Sum(a.bin), time.Millisecond)
		list = append(list, targets[n])
	}
	l.Targets = func() []*devloop.Target { return list }
	return l, ev, agents, targets
}

// run starts the loop on a fake source and returns it.
func run(t *testing.T, l *devloop.Loop) *fakeSource {
	src := &fakeSource{batches: make(chan watch.Batch)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return src
}

// edit hands the loop an edit of main.go made at first.
func edit(t *testing.T, src *fakeSource, first time.Time) {
	t.Helper()
	select {
	case src.batches <- watch.Batch{First: first, Paths: []string{"/src/main.go"}}:
	case <-time.After(time.Minute):
		t.Fatal("the loop did not take an edit within a minute: something holds it up")
	}
}

// A newer edit cancels the build in flight; the build that follows ships, and its edit→ready
// counts from the first edit.
func TestNewerEditCancelsBuildInFlight(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{nil, binary("2")}, started: make(chan int, 2), cancelled: make(chan int, 1)}
	l, ev, agents, targets := setup(t, ship.Raw, b, nil, "pod")
	l.Join(t.Context(), targets["pod"])
	ev.next("the image ready", is("ready", "pod", 1))
	src := run(t, l)

	firstEdit := time.Now().Add(-time.Hour)
	edit(t, src, firstEdit)
	if n := <-b.started; n != 0 {
		t.Fatalf("build %d started first", n)
	}
	edit(t, src, time.Now())
	if n := <-b.cancelled; n != 0 {
		t.Fatalf("build %d was cancelled, want 0", n)
	}
	r := ev.next("iteration 2 ready", is("ready", "pod", 2)).Ready
	if r.EditToReady < float64(time.Hour.Milliseconds()) {
		t.Errorf("edit→ready %.0f ms: it must count from the first edit, an hour ago", r.EditToReady)
	}
	if got := agents["pod"].runs(); got != "2" {
		t.Errorf("the pod runs version %s, want 2", got)
	}
	if b.calls != 2 {
		t.Errorf("%d builds, want 2", b.calls)
	}
	ev.none("ship_failed", "pod")
}

// A pod that runs something else than the loop believes refuses the delta (409) and gets the
// whole binary.
func TestWrongBaseResendsInFull(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("2")}}
	l, ev, agents, _ := setup(t, ship.Delta, b, map[string][]byte{"pod": binary("restarted")}, "pod")
	// The loop believes it runs the image's binary, 1.
	pod := devloop.NewTarget("pod", agents["pod"], delta.Sum(binary("1")), time.Millisecond)
	l.Targets = func() []*devloop.Target { return []*devloop.Target{pod} }
	l.Join(t.Context(), pod)
	ev.next("the image ready", is("ready", "pod", 1))
	src := run(t, l)

	edit(t, src, time.Now())
	r := ev.next("iteration 2 ready", is("ready", "pod", 2)).Ready
	ran, kinds := agents["pod"].history()
	if len(kinds) != 2 || !kinds[0].HasBase() || kinds[1] != delta.Full {
		t.Fatalf("the agent got patches %v, want a delta then the full binary", kinds)
	}
	if len(ran) != 1 || ran[0] != "2" || r.BinaryBytes == 0 {
		t.Fatalf("the agent ran %v (ready %+v), want [2]", ran, r)
	}
	ev.none("ship_failed", "pod")
}

// An edit that compiles to the binary the pod runs is reported ready without a transfer.
func TestUnchangedBinaryIsNotShipped(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("1")}}
	l, ev, agents, targets := setup(t, ship.Raw, b, nil, "pod")
	l.Join(t.Context(), targets["pod"])
	ev.next("the image ready", is("ready", "pod", 1))
	src := run(t, l)

	edit(t, src, time.Now())
	r := ev.next("iteration 2 ready", is("ready", "pod", 2)).Ready
	if r.Method != "unchanged" || r.BytesSent != 0 {
		t.Errorf("ready %+v: want method unchanged, nothing sent", r)
	}
	if _, kinds := agents["pod"].history(); len(kinds) != 0 {
		t.Errorf("the agent got %d patches, want none", len(kinds))
	}
	ev.none("ship_failed", "pod")
}

// A pod that joins while a newer build is published ends on the newest build: its catch-up
// (the older build) is still in flight when the newer one is queued, and the newer one goes
// after it, never before.
func TestPodJoiningMidShipEndsOnNewest(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("2")}}
	l, ev, agents, targets := setup(t, ship.Raw, b, map[string][]byte{"pod": binary("0")}, "pod")
	pod, a := targets["pod"], agents["pod"]
	inFlight, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.before = func(ctx context.Context, h delta.Header) error {
		if h.Target == delta.Sum(binary("1")) {
			once.Do(func() { close(inFlight) })
			<-release
		}
		return nil
	}
	src := run(t, l)
	l.Join(t.Context(), pod) // the pod runs 0: it is brought to 1, and that upload hangs
	<-inFlight
	edit(t, src, time.Now()) // 2 is published meanwhile
	// Release the upload of 1 once 2 reached the pod, or is queued behind 1.
	deadline := time.Now().Add(time.Minute)
	for a.runs() != "2" && devloop.Queued(pod) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("build 2 neither reached the pod nor was queued for it")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	ev.next("iteration 2 ready", is("ready", "pod", 2))
	// Both uploads end, in whichever order the loop sent them.
	for ran, _ := a.history(); len(ran) < 2; ran, _ = a.history() {
		if time.Now().After(deadline) {
			t.Fatalf("the pod ran %v: want both builds applied", ran)
		}
		time.Sleep(time.Millisecond)
	}
	if ran, _ := a.history(); len(ran) != 2 || ran[1] != "2" || a.runs() != "2" {
		t.Fatalf("the pod ran %v and runs %s: it must end on 2", ran, a.runs())
	}
	ev.none("ship_failed", "pod")
}

// One pod that hangs holds up neither the loop nor the other pods: it is reported slow, then
// failed when its call ends, and once it answers again it gets the newest build (not the ones it
// missed).
func TestHungPodIsLeftBehindAndCaughtUp(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("2"), binary("3")}}
	l, ev, agents, targets := setup(t, ship.Raw, b, nil, "good", "hung")
	l.SlowAfter = 20 * time.Millisecond
	hung := make(chan struct{})
	agents["hung"].before = func(ctx context.Context, h delta.Header) error {
		select {
		case <-hung: // the call ends the way a stalled upload does
			return fmt.Errorf("%w: no progress for 30s", agentapi.ErrStalled)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, n := range []string{"good", "hung"} {
		l.Join(t.Context(), targets[n])
		ev.next("the image ready on "+n, is("ready", n, 1))
	}
	src := run(t, l)

	edit(t, src, time.Now())
	ev.next("iteration 2 ready on the good pod", is("ready", "good", 2))
	ev.next("the hung pod reported slow", is("ship_slow", "hung", 2))
	edit(t, src, time.Now())
	ev.next("iteration 3 ready on the good pod while the other hangs", is("ready", "good", 3))

	// It answers again: the hung call fails, and the pod is brought to 3 directly.
	agents["hung"].setBefore(nil)
	close(hung)
	ev.next("the failure of the hung pod's iteration 2", is("ship_failed", "hung", 2))
	ev.next("iteration 3 ready on the pod that hung", is("ready", "hung", 3))
	ev.none("ship_failed", "good")
	if ran, _ := agents["hung"].history(); len(ran) != 1 || ran[0] != "3" {
		t.Fatalf("the pod that hung ran %v, want only 3", ran)
	}
}

// A pod reached again with the same app process (its port-forward reconnected, say after the
// API server restarted) is no news: no second ready line for it, neither for the image nor for
// a shipped build. A new process there (the container restarted) is.
func TestRejoinWithTheSameProcessIsNoNews(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("2")}}
	l, ev, agents, targets := setup(t, ship.Raw, b, nil, "pod")
	a := agents["pod"]
	a.pid = 100
	again := func() {
		t.Helper()
		devloop.JoinAndWait(t.Context(), l, devloop.NewTarget("pod", a, delta.Sum(a.bin), time.Millisecond))
	}
	devloop.JoinAndWait(t.Context(), l, targets["pod"])
	ev.next("the image ready", is("ready", "pod", 1))
	again()
	src := run(t, l)
	edit(t, src, time.Now())
	ev.next("iteration 2 ready", is("ready", "pod", 2))
	again()
	a.mu.Lock()
	a.pid = 500 // the container restarted, its emptyDir kept the newest build
	a.mu.Unlock()
	again()
	ev.next("the restarted pod ready", is("ready", "pod", 2))
	ev.none("ready", "pod")
}

// A pod that cannot be reached when a kodata file is saved gets the file once it answers; the
// others get it at once.
func TestKoDataReachesPodThatWasDown(t *testing.T) {
	b := &fakeBuilder{}
	l, ev, agents, targets := setup(t, ship.Raw, b, nil, "up", "down")
	l.KoData = t.TempDir()
	for _, n := range []string{"up", "down"} {
		l.Join(t.Context(), targets[n])
		ev.next("the image ready on "+n, is("ready", n, 1))
	}
	agents["down"].setDown(true)
	src := run(t, l)

	page := filepath.Join(l.KoData, "index.html")
	if err := os.WriteFile(page, []byte("<h1>v2</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.batches <- watch.Batch{First: time.Now(), Paths: []string{page}}
	ev.next("the file synced to the pod that is up", on("synced", "up"))
	ev.next("the failure to reach the other", on("ship_failed", "down"))
	agents["down"].setDown(false)
	ev.next("the file synced to the pod that was down", on("synced", "down"))
	for n, a := range agents {
		a.mu.Lock()
		got := a.files["index.html"]
		a.mu.Unlock()
		if got != "<h1>v2</h1>" {
			t.Errorf("pod %s has index.html %q", n, got)
		}
	}
	if b.calls != 0 {
		t.Errorf("%d builds for a kodata edit", b.calls)
	}
}

// Iteration 1 takes one path whether hotpod started the app (Start) or the cluster did (Init,
// then Join): the app's readiness is awaited and reported with the first build.
func TestFirstIteration(t *testing.T) {
	for _, tc := range []struct {
		name, method string
	}{{"start", "start"}, {"image", "image"}} {
		t.Run(tc.name, func(t *testing.T) {
			ev, rep := newEvents(t)
			b := &fakeBuilder{builds: [][]byte{binary("1")}}
			l := &devloop.Loop{Service: "app", Builder: b, Shipper: ship.New(ship.Raw), Report: rep, WorkDir: t.TempDir(), ReadyTimeout: time.Minute}
			a := &fakeAgent{}
			switch tc.name {
			case "start":
				_, err := l.Start(t.Context(), func(ctx context.Context, path string) (*devloop.Target, error) {
					bin, err := os.ReadFile(path)
					a.bin = bin
					return &devloop.Target{Name: "local", Client: a}, err
				})
				if err != nil {
					t.Fatal(err)
				}
			case "image":
				a.bin = binary("1")
				l.Init(a.bin, time.Millisecond, time.Now())
				l.Join(t.Context(), devloop.NewTarget("local", a, delta.Sum(a.bin), time.Millisecond))
			}
			r := ev.next("iteration 1 ready", is("ready", "local", 1)).Ready
			if r.Method != tc.method || r.BuildMS <= 0 || r.SHA256 != delta.Sum(binary("1")).String() {
				t.Fatalf("ready %+v, want method %s with the build's time and hash", r, tc.method)
			}
			if _, kinds := a.history(); len(kinds) != 0 {
				t.Fatalf("iteration 1 shipped %v", kinds)
			}
		})
	}
}

// addsUp fails the test unless r's phases add up to its edit→ready: nothing the loop does
// between the first file event and the ready falls outside a phase. The tolerance covers the
// microsecond rounding of each phase.
func addsUp(t *testing.T, what string, r *report.Ready) {
	t.Helper()
	sum := r.DebounceMS + r.BuildWaitMS + r.BuildMS + r.ReadMS + r.QueueMS + r.PatchMS + r.ShipMS + r.RestartMS + r.ReadyMS
	if math.Abs(sum-r.EditToReady) > 0.02 {
		t.Errorf("%s: the phases add up to %.3f ms, edit→ready is %.3f ms: %+v", what, sum, r.EditToReady, *r)
	}
	for name, ms := range map[string]float64{"debounce": r.DebounceMS, "build_wait": r.BuildWaitMS, "build": r.BuildMS,
		"read": r.ReadMS, "queue": r.QueueMS, "patch": r.PatchMS} {
		if ms < 0 {
			t.Errorf("%s: %s_ms is negative: %+v", what, name, *r)
		}
	}
}

// The ready event's phases account for all of edit→ready, on every path of an edit: a wait
// for a build slot another service holds, a debounce, a pod still busy with the previous
// edit, a build that compiled to the running binary, a pod that runs another base.
func TestPhasesAddUpToEditToReady(t *testing.T) {
	b := &fakeBuilder{builds: [][]byte{binary("2"), binary("3"), binary("4"), binary("4"), binary("5")}}
	l, ev, agents, targets := setup(t, ship.Delta, b, nil, "pod")
	l.Builds = make(chan struct{}, 1)
	shipped := make(chan int, 8)
	l.OnShipped = func(it int, _ delta.Hash) { shipped <- it }
	l.Join(t.Context(), targets["pod"])
	ev.next("the image ready", is("ready", "pod", 1))
	src := run(t, l)

	// Another service's build holds the only slot when the edit arrives, 200 ms after its
	// first file event.
	l.Builds <- struct{}{}
	edit(t, src, time.Now().Add(-200*time.Millisecond))
	<-l.Builds
	r := ev.next("iteration 2 ready", is("ready", "pod", 2)).Ready
	addsUp(t, "a delta", r)
	if r.DebounceMS < 200 || r.Method != "delta" {
		t.Errorf("iteration 2: %+v, want a delta with the 200 ms before the loop took the edit as debounce_ms", *r)
	}

	// The pod is busy with iteration 3 when iteration 4 is queued for it.
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	agents["pod"].setBefore(func(ctx context.Context, _ delta.Header) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
		return nil
	})
	edit(t, src, time.Now())
	<-entered
	edit(t, src, time.Now())
	for it := range shipped {
		if it == 4 {
			break
		}
	}
	close(gate)
	addsUp(t, "a pod busy with the build before", ev.next("iteration 3 ready", is("ready", "pod", 3)).Ready)
	r = ev.next("iteration 4 ready", is("ready", "pod", 4)).Ready
	addsUp(t, "a build that waited for the pod", r)
	if r.QueueMS <= 0 {
		t.Errorf("iteration 4 waited in the pod's queue behind iteration 3, yet queue_ms is %v", r.QueueMS)
	}
	agents["pod"].setBefore(nil)

	// The same binary again: nothing to ship.
	edit(t, src, time.Now())
	r = ev.next("iteration 5 ready", is("ready", "pod", 5)).Ready
	addsUp(t, "the running binary", r)
	if r.Method != "unchanged" {
		t.Errorf("iteration 5: %+v, want unchanged", *r)
	}

	// The pod restarted from another binary behind the loop's back: the delta is refused and
	// the whole binary goes.
	agents["pod"].mu.Lock()
	agents["pod"].bin = binary("other")
	agents["pod"].mu.Unlock()
	edit(t, src, time.Now())
	r = ev.next("iteration 6 ready", is("ready", "pod", 6)).Ready
	addsUp(t, "a refused delta, then the whole binary", r)
	if r.Method != "full" {
		t.Errorf("iteration 6: %+v, want full after the refused delta", *r)
	}
}

// go list runs again after an edit only when the edit may change what to watch: the first edit
// of a file, an import, go.mod; never for an edit of a function body.
func TestWatchRefreshOnlyWhenTheShapeChanges(t *testing.T) {
	dir := t.TempDir()
	main, mod := filepath.Join(dir, "main.go"), filepath.Join(dir, "go.mod")
	write := func(p, src string) {
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := &devloop.Loop{}
	for i, c := range []struct {
		what  string
		src   string
		paths []string
		want  bool
	}{
		{"the first edit of a file", `package main; import "fmt"; func main() { fmt.Println(1) }`, []string{main}, true},
		{"a body", `package main; import "fmt"; func main() { fmt.Println(2) }`, []string{main}, false},
		{"a body again", `package main; import "fmt"; func main() { fmt.Println(3) }`, []string{main}, false},
		{"an import", `package main; import ("fmt"; "os"); func main() { fmt.Println(os.Args) }`, []string{main}, true},
		{"a body with go.mod", `package main; import ("fmt"; "os"); func main() { fmt.Println(os.Args, 1) }`, []string{main, mod}, true},
		{"the file removed", "", []string{main}, true},
	} {
		if c.src == "" {
			os.Remove(main)
		} else {
			write(main, c.src)
		}
		if got := devloop.Reshaped(l, c.paths); got != c.want {
			t.Errorf("edit %d, %s: refresh %v, want %v", i, c.what, got, c.want)
		}
	}
}
