// Package report prints what the dev loop does: one human line per iteration and pod, or one JSON
// object per line for tools and benchmarks (--output json). Its types are the one schema of
// those lines: Decode reads them back (the tests and hotpod bench do), and anything that a tool
// needs from hotpod's output is an event here, never a human line to scrape.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Ready says a pod runs the new binary and passed its probe.
type Ready struct {
	Event       string  `json:"event"` // "ready"
	Service     string  `json:"service"`
	Pod         string  `json:"pod"`
	Iteration   int     `json:"iteration"`
	EditToReady float64 `json:"edit_to_ready_ms"`
	// The phases of edit→ready, in the order they happen. For an edit they add up to
	// EditToReady (to rounding): nothing the loop does falls between two of them. Iteration 1
	// of an image counts from the session's start and reports only its build (the push and
	// rollout are not phases of the loop); a pod that joined counts from when it joined.
	DebounceMS  float64 `json:"debounce_ms"`   // the first file event → the batch reaches the loop (the watcher's quiet period)
	BuildWaitMS float64 `json:"build_wait_ms"` // → the build that counts starts: a build slot shared with other services, builds started over by a newer edit
	BuildMS     float64 `json:"build_ms"`      // the go build (and --post-build)
	ReadMS      float64 `json:"read_ms"`       // reading the binary and hashing it, until it is queued for every pod
	QueueMS     float64 `json:"queue_ms"`      // waiting in this pod's queue (behind its previous update)
	PatchMS     float64 `json:"patch_ms"`      // choosing and computing the patch (once for all pods: the first pays)
	ShipMS      float64 `json:"ship_ms"`       // sending it and the agent applying it
	RestartMS   float64 `json:"restart_ms"`    // stopping the old process and starting the new one
	ReadyMS     float64 `json:"ready_ms"`      // until the app passed its probe
	BytesSent   int     `json:"bytes_sent"`
	BinaryBytes int     `json:"binary_bytes"`
	Method      string  `json:"method"`
	SHA256      string  `json:"sha256"`
}

// BuildFailed says the compiler refused the edit; nothing was shipped.
type BuildFailed struct {
	Event     string `json:"event"` // "build_failed"
	Service   string `json:"service"`
	Iteration int    `json:"iteration"`
	Error     string `json:"error"`
}

// Crashed says the app exited on its own; the agent waits for the next binary.
type Crashed struct {
	Event      string   `json:"event"` // "crashed"
	Service    string   `json:"service"`
	Pod        string   `json:"pod"`
	Iteration  int      `json:"iteration"`
	ExitCode   int      `json:"exit_code"`
	LastOutput []string `json:"last_output,omitempty"`
}

// Failed says a pod could not be brought to the new binary (unreachable, refused).
type Failed struct {
	Event     string `json:"event"` // "ship_failed"
	Service   string `json:"service"`
	Pod       string `json:"pod"`
	Iteration int    `json:"iteration"`
	Error     string `json:"error"`
}

// ProbeFailed says a pod's readiness check keeps failing (or can never pass), while the app runs.
type ProbeFailed struct {
	Event     string `json:"event"` // "probe_failed"
	Service   string `json:"service"`
	Pod       string `json:"pod"`
	Iteration int    `json:"iteration"`
	Probe     string `json:"probe"`
	Error     string `json:"error"`
	Failures  int    `json:"failures"`
	Permanent bool   `json:"permanent,omitempty"`
}

// Synced says files (ko's kodata/) reached a pod without a rebuild.
type Synced struct {
	Event       string   `json:"event"` // "synced"
	Service     string   `json:"service"`
	Pod         string   `json:"pod"`
	Files       []string `json:"files"`
	Bytes       int      `json:"bytes"`
	EditToReady float64  `json:"edit_to_ready_ms"`
}

// Slow says a pod has not confirmed an iteration after a while (a slow link, a slow start, or
// a pod or port-forward that hangs): the other pods did not wait for it, and it gets the newest
// build as soon as it answers.
type Slow struct {
	Event     string  `json:"event"` // "ship_slow"
	Service   string  `json:"service"`
	Pod       string  `json:"pod"`
	Iteration int     `json:"iteration"`
	AfterMS   float64 `json:"after_ms"`
}

// Paused says a pod's app is stopped in the debugger (hotpod dev --debug): at a breakpoint,
// halted by a client, at an unrecovered panic. Not a failure: its readiness waits for the
// debugger client to let it run.
type Paused struct {
	Event     string `json:"event"` // "paused"
	Service   string `json:"service"`
	Pod       string `json:"pod"`
	Iteration int    `json:"iteration"`
	At        string `json:"at"`
	// SwapPending: the edit's build waits until the app runs again.
	SwapPending bool `json:"swap_pending,omitempty"`
}

// Info is a progress message (watching, building, connected...).
type Info struct {
	Event   string `json:"event"` // "info"
	Service string `json:"service,omitempty"`
	Message string `json:"message"`
}

// Forwarding says --port-forward listens: connections to Local reach port Remote of the
// session's pods.
type Forwarding struct {
	Event  string `json:"event"` // "forwarding"
	Local  string `json:"local"` // host:port
	Remote int    `json:"remote_port"`
	To     string `json:"to,omitempty"` // the pods it reaches: "deployment/api in shop" ("": the session's)
}

// Reporter writes events. It is safe for concurrent use.
type Reporter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// New writes to w, as JSON lines when asJSON.
func New(w io.Writer, asJSON bool) *Reporter { return &Reporter{w: w, json: asJSON} }

// JSON reports whether events are written as JSON.
func (r *Reporter) JSON() bool { return r.json }

func (r *Reporter) write(v any, human func() string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(r.w, "%s\n", b)
		return
	}
	fmt.Fprintln(r.w, human())
}

// Ready reports e.
func (r *Reporter) Ready(e Ready) {
	e.Event = KindReady
	r.write(e, func() string {
		pod := ""
		if e.Pod != "local" {
			pod = " [" + e.Pod + "]"
		}
		if e.Method == "unchanged" {
			return fmt.Sprintf("✓ %s%s  build %s · same binary as running, nothing to ship   edit→ready %s", e.Service, pod,
				secs(e.BuildMS), secs(e.EditToReady))
		}
		if e.Method == "image" {
			return fmt.Sprintf("✓ %s%s  running the image  build %s   deployed and ready after %s", e.Service, pod,
				secs(e.BuildMS), secs(e.EditToReady))
		}
		if e.Iteration == 1 {
			return fmt.Sprintf("✓ %s%s  running  build %s · start %s   ready after %s", e.Service, pod,
				secs(e.BuildMS), secs(e.RestartMS+e.ReadyMS), secs(e.EditToReady))
		}
		other := ""
		if o := e.DebounceMS + e.BuildWaitMS + e.ReadMS + e.QueueMS + e.PatchMS; o > 0 {
			other = " · other " + secs(o) // debounce, waits, read, patch: the JSON has each
		}
		return fmt.Sprintf("✓ %s%s  build %s · ship %s %s · restart %s · ready %s%s   edit→ready %s", e.Service, pod,
			secs(e.BuildMS), shipped(e), secs(e.ShipMS), secs(e.RestartMS), secs(e.ReadyMS), other, secs(e.EditToReady))
	})
}

func shipped(e Ready) string {
	if e.Method == "raw" {
		return Bytes(e.BinaryBytes) + " raw"
	}
	return fmt.Sprintf("%s of %s (%s)", Bytes(e.BytesSent), Bytes(e.BinaryBytes), e.Method)
}

// BuildFailed reports e.
func (r *Reporter) BuildFailed(e BuildFailed) {
	e.Event = KindBuildFailed
	r.write(e, func() string {
		return fmt.Sprintf("%s\n✗ %s  build failed: nothing shipped, the running version keeps serving", e.Error, e.Service)
	})
}

// Crashed reports e.
func (r *Reporter) Crashed(e Crashed) {
	e.Event = KindCrashed
	r.write(e, func() string {
		var b strings.Builder
		for _, l := range e.LastOutput {
			fmt.Fprintf(&b, "  | %s\n", l)
		}
		fmt.Fprintf(&b, "✗ %s [%s]  exited with code %d: the agent keeps the container up and waits for the next edit", e.Service, e.Pod, e.ExitCode)
		return b.String()
	})
}

// Failed reports e.
func (r *Reporter) Failed(e Failed) {
	e.Event = KindFailed
	r.write(e, func() string { return fmt.Sprintf("✗ %s [%s]  %s", e.Service, e.Pod, e.Error) })
}

// ProbeFailed reports a readiness check that keeps failing.
func (r *Reporter) ProbeFailed(e ProbeFailed) {
	e.Event = KindProbeFailed
	r.write(e, func() string {
		if e.Permanent {
			return fmt.Sprintf("✗ %s [%s]  readiness %s can never pass: %s", e.Service, e.Pod, e.Probe, e.Error)
		}
		times := "once"
		if e.Failures > 1 {
			times = fmt.Sprintf("%d times", e.Failures)
		}
		return fmt.Sprintf("✗ %s [%s]  readiness %s failed %s: %s", e.Service, e.Pod, e.Probe, times, e.Error)
	})
}

// Synced reports files synced to a pod.
func (r *Reporter) Synced(e Synced) {
	e.Event = KindSynced
	r.write(e, func() string {
		return fmt.Sprintf("✓ %s [%s]  synced %s (%s)   edit→ready %s", e.Service, e.Pod, strings.Join(e.Files, ", "), Bytes(e.Bytes), secs(e.EditToReady))
	})
}

// Forwarding reports e.
func (r *Reporter) Forwarding(e Forwarding) {
	e.Event = KindForwarding
	r.write(e, func() string {
		to := e.To
		if to == "" {
			to = "the session's pods"
		}
		return fmt.Sprintf("• forwarding %s to port %d of %s", e.Local, e.Remote, to)
	})
}

// Slow reports a pod that is slow to confirm an iteration.
func (r *Reporter) Slow(e Slow) {
	e.Event = KindSlow
	r.write(e, func() string {
		return fmt.Sprintf("… %s [%s]  iteration %d not confirmed after %s: the other pods went on; this one gets the newest build when it answers",
			e.Service, e.Pod, e.Iteration, secs(e.AfterMS))
	})
}

// Paused reports e.
func (r *Reporter) Paused(e Paused) {
	e.Event = KindPaused
	r.write(e, func() string {
		s := fmt.Sprintf("⏸ %s [%s]  paused in the debugger at %s", e.Service, e.Pod, e.At)
		if e.SwapPending {
			s += ": the new build starts when it runs again"
		}
		return s
	})
}

// Infof reports a progress message.
func (r *Reporter) Infof(service, format string, args ...any) {
	e := Info{Event: KindInfo, Service: service, Message: fmt.Sprintf(format, args...)}
	r.write(e, func() string { return "• " + e.Message })
}

// secs shows short phases to the millisecond, so a 4 ms restart does not read as 0.00s.
func secs(ms float64) string {
	if ms < 100 {
		return fmt.Sprintf("%.3fs", ms/1000)
	}
	return fmt.Sprintf("%.2fs", ms/1000)
}

// Bytes formats n as a short human size.
func Bytes(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.0f KB", float64(n)/1000)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}
