package devloop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/ship"
)

// Target is one running copy of the app, reached through its agent. Its work (builds to run,
// kodata files to sync) waits in a queue of its own, served by one worker from Join on: what
// it is asked to run is only ever replaced by something newer.
type Target struct {
	Name   string
	Client Agent

	link ship.Link

	mu      sync.Mutex
	base    delta.Hash // the binary it runs, as last known
	next    *want      // the newest build it was asked to run, not yet taken by the worker
	asked   int        // the iteration of the newest build it was asked to run
	files   map[string]bool
	filesAt time.Time // the first edit of the queued files
	wake    chan struct{}
	started bool
}

// want asks a target to run a build.
type want struct {
	build  *buildInfo
	first  time.Time // where edit→ready counts from
	queued time.Time // when it was queued: queue_ms counts from there
	// edit: it is the edit's own build, whose phases before the queue count (build.debounce...)
	edit bool
	// join: the catch-up of a target that just joined; when it runs the build already, wait
	// until it is ready and report that.
	join bool
	done chan struct{} // closed once handled, or superseded (nil: nobody waits)
	once sync.Once
	// settled: the join's outcome was reported (set before done is closed)
	settled bool
}

func (w *want) finish() {
	if w.done != nil {
		w.once.Do(func() { close(w.done) })
	}
}

// NewTarget returns a target whose agent runs the binary with hash runs (zero when unknown);
// rtt is a round trip to its agent, the first hint of how fast its link is.
func NewTarget(name string, c Agent, runs delta.Hash, rtt time.Duration) *Target {
	t := &Target{Name: name, Client: c, base: runs}
	t.link.ObserveRTT(rtt)
	return t
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

// wakeLocked makes sure the worker looks at the queue again.
func (t *Target) wakeLocked() {
	if t.wake == nil {
		t.wake = make(chan struct{}, 1)
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *Target) wakeup() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wake == nil {
		t.wake = make(chan struct{}, 1)
	}
	return t.wake
}

// ask queues w unless the target was asked for the same or a newer build already; a build
// queued and not yet taken is replaced. It reports whether w was queued.
func (t *Target) ask(w *want) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.build == nil || w.build.it <= t.asked {
		return false
	}
	if t.next != nil {
		t.next.finish() // superseded: it will never be shipped
	}
	t.next, t.asked = w, w.build.it
	t.wakeLocked()
	return true
}

// newer says whether a build newer than iteration it waits in the queue.
func (t *Target) newer(it int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next != nil && t.next.build.it > it
}

// addFiles queues kodata files (relative paths) edited at first.
func (t *Target) addFiles(files []string, first time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.files == nil {
		t.files = map[string]bool{}
	}
	if len(t.files) == 0 || first.Before(t.filesAt) {
		t.filesAt = first
	}
	for _, f := range files {
		t.files[f] = true
	}
	t.wakeLocked()
}

// take empties the queue: the files to sync (sorted) and the build to run.
func (t *Target) take() ([]string, time.Time, *want) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var files []string
	for f := range t.files {
		files = append(files, f)
	}
	sort.Strings(files)
	clear(t.files)
	w := t.next
	t.next = nil
	return files, t.filesAt, w
}

// putBack returns what could not be delivered to the queue, unless something newer came.
func (t *Target) putBack(files []string, first time.Time, w *want) {
	if len(files) > 0 {
		t.addFiles(files, first)
	}
	if w == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next != nil {
		w.finish()
		return
	}
	t.next = w
}

// start runs serve once per target.
func (t *Target) start(serve func()) {
	t.mu.Lock()
	started := t.started
	t.started = true
	t.mu.Unlock()
	if !started {
		go serve()
	}
}

// Default waits of a target's worker.
const (
	DefaultSlowAfter = 10 * time.Second
	// After a target did not answer, it is asked again (its status) after 1 s, then 2, 4... at
	// most every 15 s, and at once when a new build is queued for it.
	firstRetry = time.Second
	maxRetry   = 15 * time.Second
)

// serve is t's worker: it takes what is queued and delivers it, one thing at a time, until ctx
// ends. A target that cannot be reached keeps what it was asked for and is asked again later;
// once it answers it gets the newest build.
func (l *Loop) serve(ctx context.Context, t *Target) {
	var (
		retry    time.Duration // >0: it did not answer; wait this long before asking again
		reported int           // the iteration whose failure to reach t was reported
		wake     = t.wakeup()
	)
	for {
		var timer <-chan time.Time
		if retry > 0 {
			timer = time.After(retry)
		}
		select {
		case <-ctx.Done():
			_, _, w := t.take()
			if w != nil {
				w.finish()
			}
			return
		case <-wake:
		case <-timer:
		}
		if retry > 0 {
			// Does it answer now, and what does it run? (A pod that hung may have restarted.)
			st, err := t.Client.Status(ctx)
			if err != nil {
				retry = min(2*retry, l.maxRetryWait())
				continue
			}
			runs, _ := delta.ParseHash(st.SHA256)
			t.setRuns(runs)
			retry = 0
			l.Report.Infof(l.Service, "pod %s answers again: bringing it to the newest build", t.Name)
		}
		for ctx.Err() == nil {
			files, filesAt, w := t.take()
			if len(files) == 0 && w == nil {
				break
			}
			if left, err := l.sync(ctx, t, filesAt, files); err != nil {
				l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(),
					Error: fmt.Sprintf("sync kodata/%s: %v; it gets the files when it answers", left[0], err)})
				t.putBack(left, filesAt, w)
				retry = l.firstRetryWait()
				break
			}
			if w == nil {
				continue
			}
			err := l.bring(ctx, t, w)
			if err == nil || ctx.Err() != nil {
				w.finish()
				continue
			}
			// Not reached: keep the build for when it answers, and say so once per iteration.
			if reported != w.build.it {
				reported = w.build.it
				l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: w.build.it,
					Error: fmt.Sprintf("ship: %v; the other pods went on, this one gets the newest build when it answers", err)})
			}
			t.putBack(nil, time.Time{}, w)
			retry = l.firstRetryWait()
			break
		}
	}
}

func (l *Loop) firstRetryWait() time.Duration { return or(l.retry, firstRetry) }
func (l *Loop) maxRetryWait() time.Duration   { return or(l.maxRetry, maxRetry) }
func (l *Loop) slowAfter() time.Duration      { return or(l.SlowAfter, DefaultSlowAfter) }

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// unreachable says whether err means the agent could not be reached (as opposed to an answer
// that refused).
func unreachable(err error) bool {
	var ae *agentapi.APIError
	return err != nil && !errors.As(err, &ae)
}

// ready is the ready event of w on t, with the phases until start (when t's worker took w):
// the caller adds those from there to end, where edit→ready ends.
func (l *Loop) ready(t *Target, w *want, start, end time.Time) report.Ready {
	b := w.build
	r := report.Ready{Service: l.Service, Pod: t.Name, Iteration: b.it, EditToReady: agentapi.Ms(end.Sub(w.first)),
		QueueMS: agentapi.Ms(start.Sub(w.queued)), BinaryBytes: b.size, SHA256: b.h.String()}
	if w.edit {
		r.DebounceMS, r.BuildWaitMS, r.BuildMS, r.ReadMS = agentapi.Ms(b.debounce), agentapi.Ms(b.wait), agentapi.Ms(b.took), agentapi.Ms(b.read)
	}
	return r
}

// bring ships w's build to t and reports the outcome. It returns an error only when t could
// not be reached; every other outcome is reported here.
func (l *Loop) bring(ctx context.Context, t *Target, w *want) error {
	start := time.Now()
	b := w.build
	slow := time.AfterFunc(l.slowAfter(), func() {
		l.Report.Slow(report.Slow{Service: l.Service, Pod: t.Name, Iteration: b.it, AfterMS: agentapi.Ms(l.slowAfter())})
	})
	defer slow.Stop()
	// refused reports an outcome that asking again would not change (the agent refused, the
	// app did not become ready, the patch could not be made).
	refused := func(err error) error {
		l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: b.it, Error: err.Error()})
		return nil
	}
	base := t.runs()
	if base == b.h {
		if w.join {
			return l.settle(ctx, t, w, start)
		}
		// The edit compiled to the binary the target already runs (a reverted change, a
		// comment): nothing to ship, and the user still hears that it is live.
		r := l.ready(t, w, start, start)
		r.Method = "unchanged"
		l.Report.Ready(r)
		return nil
	}
	kind := l.Shipper.Choose(base, b.h, &t.link)
	patch, err := l.Shipper.Patch(kind, base, b.h)
	if err != nil {
		if t.newer(b.it) {
			return nil // a build that old may be forgotten already; the newer one goes next
		}
		return refused(err)
	}
	t0 := time.Now()
	sent := t0                // when the update whose answer counts was sent: the link's sample
	var repatch time.Duration // a second patch, for a target that runs another base
	p := agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: l.ReadyTimeout}
	res, err := t.Client.Update(ctx, patch, p)
	if agentapi.IsWrongBase(err) {
		// It runs something else than we thought (restarted from the image, say): send it all.
		t.setRuns(delta.Hash{})
		t1 := time.Now()
		kind = l.Shipper.Choose(delta.Hash{}, b.h, &t.link)
		if patch, err = l.Shipper.Patch(kind, delta.Hash{}, b.h); err != nil {
			return refused(err)
		}
		sent = time.Now()
		repatch = sent.Sub(t1)
		res, err = t.Client.Update(ctx, patch, p)
	}
	end := time.Now()
	elapsed := end.Sub(t0) - repatch // the refused update counts as shipping: it went over the link
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if unreachable(err) {
			// It may have swapped, or not: the next patch needs no base, unless the agent
			// says what it runs when it answers again.
			t.setRuns(delta.Hash{})
			return err
		}
		return refused(fmt.Errorf("ship: %w", err))
	}
	t.setRuns(b.h)
	agentSide := time.Duration((res.ApplyMS + res.RestartMS + res.ReadyMS) * float64(time.Millisecond))
	t.link.Observe(len(patch), end.Sub(sent)-agentSide)
	switch res.State {
	case agentapi.StateExited:
		return nil // the event stream reports the crash, with its output
	case agentapi.StatePaused:
		// Stopped in the debugger (--debug): not a failure. The event stream reports a new
		// pause; a swap that waits for a paused app is news of this edit.
		if res.Debug != nil && res.Debug.SwapPending {
			l.Report.Paused(report.Paused{Service: l.Service, Pod: t.Name, Iteration: b.it, At: res.Debug.At, SwapPending: true})
		}
		return nil
	case agentapi.StateReady:
	default:
		return refused(fmt.Errorf("the new version did not become ready within %s (state %s)", l.ReadyTimeout, res.State))
	}
	l.readyRuns(t.Name, res.PID)
	r := l.ready(t, w, start, end)
	r.PatchMS = agentapi.Ms(t0.Sub(start) + repatch)
	r.ShipMS, r.RestartMS, r.ReadyMS = agentapi.Ms(elapsed)-res.RestartMS-res.ReadyMS, res.RestartMS, res.ReadyMS
	r.BytesSent, r.Method = len(patch), kind.String()
	l.Report.Ready(r)
	return nil
}

// settle waits until a target that joined running the current build is ready (or its app has
// exited) and reports it: iteration 1 as the first start, a later one as unchanged. A newer
// build queued meanwhile ends the wait: it goes next.
func (l *Loop) settle(ctx context.Context, t *Target, w *want, start time.Time) error {
	b := w.build
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := waitState(wctx, t.Client, l.ReadyTimeout, func() bool { return t.newer(b.it) })
	defer func() { w.settled = ctx.Err() == nil && !t.newer(b.it) }()
	switch {
	case ctx.Err() != nil || t.newer(b.it):
		return nil
	case unreachable(err):
		return err
	case err != nil:
		l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: b.it, Error: err.Error()})
		return nil
	}
	switch st.State {
	case agentapi.StatePaused:
		at := ""
		if st.Debug != nil {
			at = st.Debug.At
		}
		l.Report.Paused(report.Paused{Service: l.Service, Pod: t.Name, Iteration: b.it, At: at})
	case agentapi.StateExited:
		if st.ExitCode != nil {
			l.Report.Crashed(report.Crashed{Service: l.Service, Pod: t.Name, Iteration: b.it,
				ExitCode: *st.ExitCode, LastOutput: st.LastOutput})
		}
	case agentapi.StateReady:
		if !l.readyRuns(t.Name, st.PID) {
			return nil // the same process, reached again (its port-forward reconnected): no news
		}
		end := time.Now()
		r := l.ready(t, w, start, end) // from the join: its queue, then the wait for its app
		r.ReadyMS, r.Method = agentapi.Ms(end.Sub(start)), "unchanged"
		if b.it == 1 {
			r = report.Ready{Service: l.Service, Pod: t.Name, Iteration: 1, EditToReady: agentapi.Ms(end.Sub(l.started)),
				BuildMS: agentapi.Ms(b.took), BinaryBytes: b.size, SHA256: b.h.String(), Method: l.firstMethod}
			if l.launched > 0 {
				r.RestartMS = agentapi.Ms(l.launched)
				r.ReadyMS = r.EditToReady - r.BuildMS - r.RestartMS
			}
		}
		l.Report.Ready(r)
	}
	return nil
}

// readyRuns records that target name's app runs as process pid and is ready; it reports whether
// that is news (another process than the one last reported ready there, or an unknown pid).
func (l *Loop) readyRuns(name string, pid int) bool {
	l.readyMu.Lock()
	defer l.readyMu.Unlock()
	if l.readyPID == nil {
		l.readyPID = map[string]int{}
	}
	news := pid == 0 || l.readyPID[name] != pid
	l.readyPID[name] = pid
	return news
}

// waitState polls until the app is ready, has exited or is paused in the debugger, or stop
// says to give up; the polls start 2 ms apart and slow down to 100 ms.
func waitState(ctx context.Context, c Agent, timeout time.Duration, stop func() bool) (agentapi.Status, error) {
	deadline := time.Now().Add(timeout)
	every := 2 * time.Millisecond
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
		if stop() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(every):
		}
		every = min(every*3/2, 100*time.Millisecond)
	}
}

// sync puts each file as it is now on disk (or deletes it when it is gone) into t's sync dir.
// When t cannot be reached it returns the error and the files not delivered.
func (l *Loop) sync(ctx context.Context, t *Target, first time.Time, files []string) ([]string, error) {
	sent, total := []string{}, 0
	for i, rel := range files {
		p := filepath.Join(l.KoData, filepath.FromSlash(rel))
		fi, err := os.Stat(p)
		local := err != nil && !errors.Is(err, os.ErrNotExist)
		if cerr := agentapi.CheckFilePath(rel); cerr != nil {
			err, local = cerr, true
		}
		switch {
		case local:
		case errors.Is(err, os.ErrNotExist):
			err = t.Client.DeleteFile(ctx, rel)
		case fi.IsDir():
			continue // its files come on their own
		default:
			var data []byte
			if data, err = os.ReadFile(p); err != nil {
				local = true
			} else if err = t.Client.PutFile(ctx, rel, data); err == nil {
				total += len(data)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			if !local && unreachable(err) {
				l.reportSynced(t, first, sent, total)
				return files[i:], err
			}
			l.Report.Failed(report.Failed{Service: l.Service, Pod: t.Name, Iteration: l.Iteration(), Error: fmt.Sprintf("sync kodata/%s: %v", rel, err)})
			continue
		}
		sent = append(sent, "kodata/"+rel)
	}
	l.reportSynced(t, first, sent, total)
	return nil, nil
}

func (l *Loop) reportSynced(t *Target, first time.Time, sent []string, total int) {
	if len(sent) > 0 {
		l.Report.Synced(report.Synced{Service: l.Service, Pod: t.Name, Files: sent, Bytes: total,
			EditToReady: agentapi.Ms(time.Since(first))})
	}
}
