// Package devloop is hotpod's edit → running loop: on each batch of source changes it builds the
// app and hands the new binary to every target, and reports each phase's time until each
// target's app is ready again.
//
// The loop never waits for a target. Each target has a queue of its own, served by one worker:
// the updates to one pod are serialised, a newer build replaces one still queued (the newest
// always wins), and a pod that is slow or hangs is reported and left behind while the others get
// the edit; it is brought to the newest build once it answers again. The loop reaches the
// outside through small interfaces declared here (Builder, Agent, Source): the real ones are
// build.Builder, agentapi.Client and watch.Watcher.
package devloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/watch"
)

// Builder compiles the app into the file out; *build.Builder is the real one. A *build.Error is
// a compile error (reported; nothing is shipped); any other error ends the loop. Cancelling ctx
// must stop the build: a newer edit arrived.
type Builder interface {
	Build(ctx context.Context, out string) (build.Result, error)
}

// Agent is what the loop asks of one target's agent; *agentapi.Client is the real one. Every
// call must end on its own (the client bounds them): a call that hangs holds up that target's
// queue only. An *agentapi.APIError means the agent answered and refused; any other error means
// it could not be reached, and the loop asks again later.
type Agent interface {
	Status(ctx context.Context) (agentapi.Status, error)
	Update(ctx context.Context, patch []byte, p agentapi.UpdateParams) (agentapi.UpdateResult, error)
	Events(ctx context.Context, fn func(agentapi.Event)) error
	PutFile(ctx context.Context, path string, data []byte) error
	DeleteFile(ctx context.Context, path string) error
}

// Source is where edits come from; *watch.Watcher is the real one.
type Source interface {
	Batches() <-chan watch.Batch
	// Update changes what is watched (after a build found new local imports or embeds).
	Update(watch.Set) error
}

// Loop holds what every iteration needs.
type Loop struct {
	Service string
	Builder Builder
	Shipper *ship.Shipper
	Report  *report.Reporter
	// WorkDir receives build outputs.
	WorkDir string
	// WatchSet recomputes what to watch after a successful build (new local imports or embeds).
	WatchSet func(ctx context.Context) (watch.Set, error)
	// Targets lists the agents to update. A target must be listed before it joins (Join): then
	// either the build being published reaches it, or Join sees that build.
	Targets func() []*Target
	// ReadyTimeout bounds the wait for an app to pass its probe.
	ReadyTimeout time.Duration
	// SlowAfter is how long a target may take to confirm an iteration before it is reported
	// slow (default 10s). It is only reported: the target keeps its turn.
	SlowAfter time.Duration
	// KoData is the main package's kodata/ directory on disk ("" when none): an edit there
	// is synced to every target's agent (PUT /v1/files) without a build.
	KoData string
	// OnShipped, when set, is called once iteration it's build h is queued for every target
	// (each gets it, or a newer one, as soon as it answers): h is the build the targets should
	// run from now on.
	OnShipped func(it int, h delta.Hash)
	// Builds, when set, bounds the go builds that run at once: a build holds a slot of it (a
	// send) while it runs. Loops of several services share one, sized to the CPUs, so that an
	// edit to a package they all import rebuilds each without the builds starving each other.
	Builds chan struct{}

	iteration atomic.Int64
	current   atomic.Pointer[buildInfo]
	// iteration 1: when it began, how it came to run ("image", or "start" locally), and for a
	// local start how long the launch took
	started     time.Time
	firstMethod string
	launched    time.Duration
	// readyPID is, by target name, the app process last reported ready: a target that joins
	// again with that same process (its port-forward reconnected) is no news.
	readyMu  sync.Mutex
	readyPID map[string]int
	// kodata files edited during the session (relative paths): a target that joins gets them.
	filesMu sync.Mutex
	edited  map[string]bool
	// shapes holds the last seen gopkg.Shape of each Go file edited (Run's goroutine only).
	shapes map[string]string
	// retry is the first wait before asking a target that did not answer again (doubling to
	// maxRetry); tests shorten it.
	retry, maxRetry time.Duration
}

// buildInfo is one successful build, as the targets are asked to run it.
type buildInfo struct {
	it    int
	h     delta.Hash
	size  int
	first time.Time     // the first event of the edit
	took  time.Duration // the build
	// The edit's phases before it was queued for the targets (zero for iteration 1), and when
	// it was. Each phase ends at the timestamp where the next begins, so that they add up.
	debounce, wait, read time.Duration
	published            time.Time
}

// Iteration is the number of the latest iteration.
func (l *Loop) Iteration() int { return int(l.iteration.Load()) }

// Current is the hash of the latest successful build (zero before the first).
func (l *Loop) Current() delta.Hash {
	if b := l.current.Load(); b != nil {
		return b.h
	}
	return delta.Hash{}
}

// Launch brings up a target running the binary at path (the local agent, say).
type Launch func(ctx context.Context, path string) (*Target, error)

// Start is iteration 1 when hotpod runs the app itself: the first build, the app started by
// launch, and then the same path as a pod that joins a cluster session (Init, Join). It returns
// once the app is ready, has exited, or failed to become ready (each reported).
func (l *Loop) Start(ctx context.Context, launch Launch) (*Target, error) {
	l.iteration.Store(1)
	t0 := time.Now()
	o, err := l.build(ctx, 1)
	if err != nil {
		return nil, err
	}
	l.initBuild(o.h, o.size, o.res.Duration, t0)
	l.firstMethod = "start"
	ts := time.Now()
	t, err := launch(ctx, o.res.Path)
	os.Remove(o.res.Path)
	if err != nil {
		return nil, err
	}
	l.launched = time.Since(ts)
	t.setRuns(l.Current())
	w := l.join(ctx, t)
	<-w.done // closed when ctx ends, too
	if !w.settled && ctx.Err() != nil {
		return t, ctx.Err() // interrupted before the app was up
	}
	return t, nil
}

// Init makes bin, the binary already deployed (in the image), iteration 1's build; started is
// when the session began, where iteration 1's edit→ready counts from.
func (l *Loop) Init(bin []byte, buildTime time.Duration, started time.Time) {
	l.initBuild(l.Shipper.Remember(bin), len(bin), buildTime, started)
}

func (l *Loop) initBuild(h delta.Hash, size int, buildTime time.Duration, started time.Time) {
	l.current.Store(&buildInfo{it: 1, h: h, size: size, first: started, took: buildTime})
	l.iteration.Store(1)
	l.started, l.firstMethod = started, "image"
}

// Join starts serving a target that just appeared (a new or restarted pod, or the app Start
// launched) until ctx ends: it is brought to the current build, or, when it runs that already,
// reported ready once it is; kodata edited during the session reaches it too. Join does not
// wait for any of it.
func (l *Loop) Join(ctx context.Context, t *Target) { l.join(ctx, t) }

func (l *Loop) join(ctx context.Context, t *Target) *want {
	l.filesMu.Lock()
	var edited []string
	for rel := range l.edited {
		edited = append(edited, rel)
	}
	l.filesMu.Unlock()
	now := time.Now()
	if len(edited) > 0 {
		t.addFiles(edited, now)
	}
	w := &want{build: l.current.Load(), first: now, queued: now, join: true, done: make(chan struct{})}
	if !t.ask(w) {
		w.finish() // a newer build is queued already
	}
	t.start(func() { l.serve(ctx, t) })
	return w
}

// Run handles batches from w until ctx ends.
func (l *Loop) Run(ctx context.Context, w Source) error {
	for {
		var b watch.Batch
		select {
		case <-ctx.Done():
			return nil
		case b = <-w.Batches():
		}
		received := time.Now()
		if files := l.kodata(b.Paths); len(files) > 0 {
			l.syncAll(b.First, files)
			if len(files) == len(b.Paths) {
				continue // only kodata changed: nothing to build
			}
		}
		it := int(l.iteration.Add(1))
		o, err := l.buildLatest(ctx, w, it, &b)
		if ctx.Err() != nil {
			return nil
		}
		var be *build.Error
		if errors.As(err, &be) {
			l.Report.BuildFailed(report.BuildFailed{Service: l.Service, Iteration: it, Error: be.Output})
			continue
		}
		if err != nil {
			return err
		}
		l.publish(&buildInfo{it: it, h: o.h, size: o.size, first: b.First, took: o.end.Sub(o.start),
			debounce: received.Sub(b.First), wait: o.start.Sub(received)}, o.end)
		// Only once the targets have it: freeing a large file's blocks takes tens of milliseconds
		// (25 ms for 71 MB on ext4), which read_ms counted.
		os.Remove(o.res.Path)
		if l.OnShipped != nil {
			l.OnShipped(it, o.h)
		}
		if l.reshaped(b.Paths) {
			go l.refreshWatch(ctx, w)
		}
	}
}

// reshaped says whether an edit of paths may change what to watch: a file other than a Go
// source (go.mod, go.sum, an embedded file), a Go file added, removed or seen for the first
// time, or one whose imports, build constraints or embed patterns changed (gopkg.Shape).
func (l *Loop) reshaped(paths []string) bool {
	if l.shapes == nil {
		l.shapes = map[string]string{}
	}
	changed := false
	for _, p := range paths {
		if !strings.HasSuffix(p, ".go") {
			changed = true
			continue
		}
		shape, ok := gopkg.Shape(p)
		if prev, seen := l.shapes[p]; !ok || !seen || prev != shape {
			changed = true
		}
		if ok {
			l.shapes[p] = shape
		} else {
			delete(l.shapes, p)
		}
	}
	return changed
}

// publish makes b the current build and queues it for every target. It does not wait for them.
// The order matters: a target listed after this Targets call joins after the Store, and Join
// then sees b. built is when its build ended: reading and hashing the binary took from there
// until now.
func (l *Loop) publish(b *buildInfo, built time.Time) {
	b.published = time.Now()
	b.read = b.published.Sub(built)
	l.current.Store(b)
	for _, t := range l.targets() {
		t.ask(&want{build: b, first: b.first, queued: b.published, edit: true})
	}
}

// built is the outcome of a build: the binary as the shipper read it (its hash and size), and
// when the build that made it started (holding a build slot) and ended.
type built struct {
	res        build.Result
	h          delta.Hash
	size       int
	start, end time.Time
}

// buildLatest builds, starting over whenever another batch arrives during the build: the edit
// goes on, and edit→ready counts from the batch that started it.
func (l *Loop) buildLatest(ctx context.Context, w Source, it int, b *watch.Batch) (built, error) {
	for {
		bctx, cancel := context.WithCancel(ctx)
		type out struct {
			built
			err error
		}
		done := make(chan out, 1)
		go func() {
			o, err := l.build(bctx, it)
			done <- out{o, err}
		}()
		select {
		case o := <-done:
			cancel()
			return o.built, o.err
		case nb := <-w.Batches():
			cancel()
			<-done
			if files := l.kodata(nb.Paths); len(files) > 0 {
				l.syncAll(nb.First, files) // they need no build: do not hold them back
			}
			b.Paths = append(b.Paths, nb.Paths...)
		case <-ctx.Done():
			cancel()
			<-done
			return built{}, ctx.Err()
		}
	}
}

func (l *Loop) build(ctx context.Context, it int) (built, error) {
	if l.Builds != nil {
		select {
		case l.Builds <- struct{}{}:
			defer func() { <-l.Builds }()
		case <-ctx.Done():
			return built{}, ctx.Err()
		}
	}
	out := filepath.Join(l.WorkDir, fmt.Sprintf("%s.%d", strings.ReplaceAll(l.Service, "/", "-"), it))
	o := built{start: time.Now()}
	res, err := l.Builder.Build(ctx, out)
	o.res, o.end = res, time.Now()
	if err != nil {
		return o, err
	}
	o.h, o.size, err = l.Shipper.Load(out)
	if err != nil {
		return o, fmt.Errorf("read the build: %w", err)
	}
	return o, nil
}

func (l *Loop) refreshWatch(ctx context.Context, w Source) {
	if l.WatchSet == nil {
		return
	}
	set, err := l.WatchSet(ctx)
	if err == nil {
		err = w.Update(set)
	}
	if err != nil && ctx.Err() == nil {
		l.Report.Infof(l.Service, "could not refresh the watched files: %v", err)
	}
}

// Follow reports t's crashes and failing readiness checks until ctx ends, reconnecting when
// the event stream breaks.
func (l *Loop) Follow(ctx context.Context, t *Target) {
	for ctx.Err() == nil {
		err := t.Client.Events(ctx, func(e agentapi.Event) {
			switch {
			case e.Type == agentapi.EventExited && e.ExitCode != nil:
				l.Report.Crashed(report.Crashed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(),
					ExitCode: *e.ExitCode, LastOutput: e.LastOutput})
			case e.Type == agentapi.EventPaused:
				l.Report.Paused(report.Paused{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(), At: e.At})
			case e.Type == agentapi.EventResumed:
				l.Report.Infof(l.Service, "%s runs again", t.Name)
			case e.Type == agentapi.EventProbeFailed && (e.Permanent || e.Failures >= 3):
				// The first check a millisecond after a start usually finds the port closed:
				// a check that keeps failing is news, one that failed once is not.
				l.Report.ProbeFailed(report.ProbeFailed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(),
					Probe: e.Probe, Error: e.Error, Failures: e.Failures, Permanent: e.Permanent})
			}
		})
		if ctx.Err() != nil || err == nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// kodata picks the paths of a batch that lie in KoData, relative to it.
func (l *Loop) kodata(paths []string) []string {
	if l.KoData == "" {
		return nil
	}
	var out []string
	for _, p := range paths {
		rel, err := filepath.Rel(l.KoData, p)
		if err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return out
}

// syncAll queues kodata files for every target; each reads them from disk when its turn comes,
// so it gets them as they are then.
func (l *Loop) syncAll(first time.Time, files []string) {
	l.filesMu.Lock()
	if l.edited == nil {
		l.edited = map[string]bool{}
	}
	for _, f := range files {
		l.edited[f] = true
	}
	l.filesMu.Unlock()
	for _, t := range l.targets() {
		t.addFiles(files, first)
	}
}

func (l *Loop) targets() []*Target {
	if l.Targets == nil {
		return nil
	}
	return l.Targets()
}
