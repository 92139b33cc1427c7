// Package devloop is hotpod's edit → running loop: on each batch of source changes it builds the
// app, ships the new binary to every target's agent at once, and reports each phase's time until
// each target's app is ready again.
package devloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/watch"
)

// Target is one running copy of the app, reached through its agent.
type Target struct {
	Name   string
	Client *agentapi.Client

	link ship.Link
	mu   sync.Mutex
	base delta.Hash // the binary it runs, as last known
}

func (t *Target) runs() delta.Hash {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.base
}

func (t *Target) setRuns(h delta.Hash) {
	t.mu.Lock()
	t.base = h
	t.mu.Unlock()
}

// Loop holds what every iteration needs.
type Loop struct {
	Service string
	Builder *build.Builder
	Shipper *ship.Shipper
	Report  *report.Reporter
	// WorkDir receives build outputs.
	WorkDir string
	// WatchSet recomputes what to watch after a successful build (new local imports or embeds).
	WatchSet func(ctx context.Context) (watch.Set, error)
	// Targets lists the agents to update.
	Targets func() []*Target
	// ReadyTimeout bounds the wait for an app to pass its probe.
	ReadyTimeout time.Duration
	// KoData is the main package's kodata/ directory on disk ("" when none): an edit there
	// is synced to every target's agent (PUT /v1/files) without a build.
	KoData string

	iteration atomic.Int64
	current   atomic.Pointer[delta.Hash]
	// iteration 1 of a cluster session: when it began, its build, the binary's size
	started    time.Time
	firstBuild time.Duration
	size       atomic.Int64
	// kodata files edited during the session (relative paths): a target that joins gets them.
	filesMu sync.Mutex
	edited  map[string]bool
}

// Iteration is the number of the latest iteration.
func (l *Loop) Iteration() int { return int(l.iteration.Load()) }

// Current is the hash of the latest successful build (zero before the first).
func (l *Loop) Current() delta.Hash {
	if h := l.current.Load(); h != nil {
		return *h
	}
	return delta.Hash{}
}

// Launch brings up a target running the binary at path (the local agent, say).
type Launch func(ctx context.Context, path string) (*Target, error)

// Start is iteration 1: the first build, the app started by launch, and its readiness.
func (l *Loop) Start(ctx context.Context, launch Launch) (*Target, error) {
	l.iteration.Store(1)
	t0 := time.Now()
	res, bin, err := l.build(ctx, 1)
	if err != nil {
		return nil, err
	}
	h := l.Shipper.Remember(bin)
	l.current.Store(&h)
	ts := time.Now()
	t, err := launch(ctx, res.Path)
	os.Remove(res.Path)
	if err != nil {
		return nil, err
	}
	t.setRuns(h)
	started := time.Since(ts)
	st, err := waitState(ctx, t.Client, l.ReadyTimeout)
	if err != nil {
		return t, err
	}
	if st.State == agentapi.StateExited && st.ExitCode != nil {
		l.Report.Crashed(report.Crashed{Service: l.Service, Pod: t.Name, Iteration: 1,
			ExitCode: *st.ExitCode, LastOutput: st.LastOutput})
	}
	if st.State == agentapi.StateReady {
		l.Report.Ready(report.Ready{Service: l.Service, Pod: t.Name, Iteration: 1,
			EditToReady: agentapi.Ms(time.Since(t0)), BuildMS: agentapi.Ms(res.Duration),
			RestartMS: agentapi.Ms(started), ReadyMS: agentapi.Ms(time.Since(ts) - started),
			BinaryBytes: len(bin), SHA256: h.String(), Method: "start"})
	}
	return t, nil
}

// waitState polls until the app is ready or has exited.
func waitState(ctx context.Context, c *agentapi.Client, timeout time.Duration) (agentapi.Status, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return st, err
		}
		if st.State == agentapi.StateReady || st.State == agentapi.StateExited || st.State == agentapi.StatePaused {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("app not ready after %s (state %s): check --ready", timeout, st.State)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Run handles batches from w until ctx ends.
func (l *Loop) Run(ctx context.Context, w *watch.Watcher) error {
	for {
		var b watch.Batch
		select {
		case <-ctx.Done():
			return nil
		case b = <-w.Batches():
		}
		if files := l.kodata(b.Paths); len(files) > 0 {
			l.syncAll(ctx, b.First, files)
			if len(files) == len(b.Paths) {
				continue // only kodata changed: nothing to build
			}
		}
		it := int(l.iteration.Add(1))
		res, bin, err := l.buildLatest(ctx, w, it, &b)
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
		os.Remove(res.Path)
		h := l.Shipper.Remember(bin)
		l.current.Store(&h)
		l.size.Store(int64(len(bin)))
		l.shipAll(ctx, it, b.First, res.Duration, h, len(bin))
		go l.refreshWatch(ctx, w)
	}
}

// buildLatest builds, starting over whenever another batch arrives during the build: the edit
// goes on, and edit→ready counts from the batch that started it.
func (l *Loop) buildLatest(ctx context.Context, w *watch.Watcher, it int, b *watch.Batch) (build.Result, []byte, error) {
	for {
		bctx, cancel := context.WithCancel(ctx)
		type out struct {
			res build.Result
			bin []byte
			err error
		}
		done := make(chan out, 1)
		go func() {
			res, bin, err := l.build(bctx, it)
			done <- out{res, bin, err}
		}()
		select {
		case o := <-done:
			cancel()
			return o.res, o.bin, o.err
		case nb := <-w.Batches():
			cancel()
			<-done
			b.Paths = append(b.Paths, nb.Paths...)
		case <-ctx.Done():
			cancel()
			<-done
			return build.Result{}, nil, ctx.Err()
		}
	}
}

func (l *Loop) build(ctx context.Context, it int) (build.Result, []byte, error) {
	out := filepath.Join(l.WorkDir, fmt.Sprintf("%s.%d", l.Service, it))
	res, err := l.Builder.Build(ctx, out)
	if err != nil {
		return res, nil, err
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return res, nil, fmt.Errorf("read the build: %w", err)
	}
	return res, bin, nil
}

func (l *Loop) refreshWatch(ctx context.Context, w *watch.Watcher) {
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

// shipAll brings every target to binary h at once; one slow or broken target does not hold up
// the others.
func (l *Loop) shipAll(ctx context.Context, it int, first time.Time, buildTime time.Duration, h delta.Hash, size int) {
	var wg sync.WaitGroup
	for _, t := range l.Targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Bring(ctx, t, it, first, buildTime, h, size)
		}()
	}
	wg.Wait()
}

// Bring ships binary h to t and reports the outcome. It is also how a new target (a replaced
// pod) catches up with the current build.
func (l *Loop) Bring(ctx context.Context, t *Target, it int, first time.Time, buildTime time.Duration, h delta.Hash, size int) {
	fail := func(err error) {
		l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: it, Error: err.Error()})
	}
	base := t.runs()
	if base == h {
		// The edit compiled to the binary the target already runs (a reverted change, a
		// comment): nothing to ship, and the user still hears that it is live.
		l.Report.Ready(report.Ready{Service: l.Service, Pod: t.Name, Iteration: it,
			EditToReady: agentapi.Ms(time.Since(first)), BuildMS: agentapi.Ms(buildTime),
			BinaryBytes: size, Method: "unchanged", SHA256: h.String()})
		return
	}
	kind := l.Shipper.Choose(base, h, &t.link)
	patch, err := l.Shipper.Patch(kind, base, h)
	if err != nil {
		fail(err)
		return
	}
	t0 := time.Now()
	res, err := t.Client.Update(ctx, patch, agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: l.ReadyTimeout})
	if agentapi.IsWrongBase(err) {
		// It runs something else than we thought (restarted from the image, say): send it all.
		t.setRuns(delta.Hash{})
		kind = l.Shipper.Choose(delta.Hash{}, h, &t.link)
		if patch, err = l.Shipper.Patch(kind, delta.Hash{}, h); err != nil {
			fail(err)
			return
		}
		t0 = time.Now()
		res, err = t.Client.Update(ctx, patch, agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: l.ReadyTimeout})
	}
	elapsed := time.Since(t0)
	if err != nil {
		if ctx.Err() == nil {
			fail(fmt.Errorf("ship: %w", err))
		}
		return
	}
	t.setRuns(h)
	agentSide := time.Duration((res.ApplyMS + res.RestartMS + res.ReadyMS) * float64(time.Millisecond))
	t.link.Observe(len(patch), elapsed-agentSide)
	switch res.State {
	case agentapi.StateExited:
		return // the event stream reports the crash, with its output
	case agentapi.StatePaused:
		// Stopped in the debugger (--debug): not a failure. The event stream reports a new
		// pause; a swap that waits for a paused app is news of this edit.
		if res.Debug != nil && res.Debug.SwapPending {
			l.Report.Paused(report.Paused{Service: l.Service, Pod: t.Name, Iteration: it, At: res.Debug.At, SwapPending: true})
		}
		return
	case agentapi.StateReady:
	default:
		fail(fmt.Errorf("the new version did not become ready within %s (state %s)", l.ReadyTimeout, res.State))
		return
	}
	l.Report.Ready(report.Ready{Service: l.Service, Pod: t.Name, Iteration: it,
		EditToReady: agentapi.Ms(time.Since(first)), BuildMS: agentapi.Ms(buildTime),
		ShipMS:    agentapi.Ms(elapsed) - res.RestartMS - res.ReadyMS,
		RestartMS: res.RestartMS, ReadyMS: res.ReadyMS, BytesSent: len(patch), BinaryBytes: size,
		Method: kind.String(), SHA256: h.String()})
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

// NewTarget returns a target whose agent runs the binary with hash runs (zero when unknown);
// rtt is a round trip to its agent, the first hint of how fast its link is.
func NewTarget(name string, c *agentapi.Client, runs delta.Hash, rtt time.Duration) *Target {
	t := &Target{Name: name, Client: c, base: runs}
	t.link.ObserveRTT(rtt)
	return t
}

// Init makes bin, the binary already deployed (in the image), iteration 1's build; started is
// when the session began, where iteration 1's edit→ready counts from.
func (l *Loop) Init(bin []byte, buildTime time.Duration, started time.Time) {
	h := l.Shipper.Remember(bin)
	l.current.Store(&h)
	l.iteration.Store(1)
	l.started, l.firstBuild = started, buildTime
	l.size.Store(int64(len(bin)))
}

// Join brings a target that just appeared (a new or restarted pod) to the current binary, or,
// when it already runs it, reports it ready once it is; kodata edited during the session
// reaches it too.
func (l *Loop) Join(ctx context.Context, t *Target) {
	l.filesMu.Lock()
	var edited []string
	for rel := range l.edited {
		edited = append(edited, rel)
	}
	l.filesMu.Unlock()
	if len(edited) > 0 {
		sort.Strings(edited)
		l.sync(ctx, t, time.Now(), edited)
	}
	h := l.Current()
	if t.runs() != h {
		l.Bring(ctx, t, l.Iteration(), time.Now(), 0, h, int(l.size.Load()))
		return
	}
	st, err := waitState(ctx, t.Client, l.ReadyTimeout)
	if err != nil {
		if ctx.Err() == nil {
			l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(), Error: err.Error()})
		}
		return
	}
	switch st.State {
	case agentapi.StatePaused:
		at := ""
		if st.Debug != nil {
			at = st.Debug.At
		}
		l.Report.Paused(report.Paused{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(), At: at})
	case agentapi.StateExited:
		if st.ExitCode != nil {
			l.Report.Crashed(report.Crashed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(),
				ExitCode: *st.ExitCode, LastOutput: st.LastOutput})
		}
	case agentapi.StateReady:
		l.Report.Ready(report.Ready{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(),
			EditToReady: agentapi.Ms(time.Since(l.started)), BuildMS: agentapi.Ms(l.firstBuild),
			BinaryBytes: int(l.size.Load()), SHA256: h.String(), Method: "image"})
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

// syncAll brings kodata files to every target at once.
func (l *Loop) syncAll(ctx context.Context, first time.Time, files []string) {
	l.filesMu.Lock()
	if l.edited == nil {
		l.edited = map[string]bool{}
	}
	for _, f := range files {
		l.edited[f] = true
	}
	l.filesMu.Unlock()
	var wg sync.WaitGroup
	for _, t := range l.Targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.sync(ctx, t, first, files)
		}()
	}
	wg.Wait()
}

// sync puts each file as it is now on disk (or deletes it when it is gone) into t's sync dir.
func (l *Loop) sync(ctx context.Context, t *Target, first time.Time, files []string) {
	sent, total := []string{}, 0
	for _, rel := range files {
		p := filepath.Join(l.KoData, filepath.FromSlash(rel))
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			err = t.Client.DeleteFile(ctx, rel)
		case err != nil:
		case fi.IsDir():
			continue // its files come on their own
		default:
			var data []byte
			if data, err = os.ReadFile(p); err == nil {
				err = t.Client.PutFile(ctx, rel, data)
				total += len(data)
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(), Error: fmt.Sprintf("sync kodata/%s: %v", rel, err)})
			}
			return
		}
		sent = append(sent, "kodata/"+rel)
	}
	if len(sent) > 0 {
		l.Report.Synced(report.Synced{Service: l.Service, Pod: t.Name, Files: sent, Bytes: total,
			EditToReady: agentapi.Ms(time.Since(first))})
	}
}
