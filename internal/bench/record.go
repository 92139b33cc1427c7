package bench

import (
	"fmt"
	"sort"

	"github.com/hotpod/hotpod/internal/report"
)

// Record is one (workload, strategy, link) result; times in milliseconds.
type Record struct {
	Workload   string  `json:"workload"`
	Strategy   string  `json:"strategy"`
	Link       string  `json:"link"`
	Iterations int     `json:"iterations"`
	MedianMS   float64 `json:"median_ms"`
	MinMS      float64 `json:"min_ms"`
	MaxMS      float64 `json:"max_ms"`
	BytesSent  int64   `json:"bytes_sent"` // median per edit
	// HotpodMS and AppMS are the same edits as hotpod reports them (edit_to_ready_ms) and as the
	// app saw them (listening, time since the edit stamp): cross-checks of MedianMS, 0 unless
	// every edit had one (Sane checks them).
	HotpodMS float64 `json:"hotpod_median_ms,omitempty"`
	AppMS    float64 `json:"app_median_ms,omitempty"`
	// Phases is where hotpod says the time went: each phase's median over the edits (so they
	// need not add up to HotpodMS, as each edit's do). Only for strategies that run hotpod dev.
	Phases  *Phases `json:"hotpod_phases,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
}

// Phases are the phases of hotpod's ready event (report.Ready), in milliseconds.
type Phases struct {
	Debounce  float64 `json:"debounce_ms"`
	BuildWait float64 `json:"build_wait_ms"`
	Build     float64 `json:"build_ms"`
	Read      float64 `json:"read_ms"`
	Queue     float64 `json:"queue_ms"`
	Patch     float64 `json:"patch_ms"`
	Ship      float64 `json:"ship_ms"`
	Restart   float64 `json:"restart_ms"`
	Ready     float64 `json:"ready_ms"`
}

// phasesOf takes the phases from a ready event.
func phasesOf(r *report.Ready) *Phases {
	return &Phases{Debounce: r.DebounceMS, BuildWait: r.BuildWaitMS, Build: r.BuildMS, Read: r.ReadMS,
		Queue: r.QueueMS, Patch: r.PatchMS, Ship: r.ShipMS, Restart: r.RestartMS, Ready: r.ReadyMS}
}

// fields lists the phases in order, for taking medians of each.
func (p *Phases) fields() []*float64 {
	return []*float64{&p.Debounce, &p.BuildWait, &p.Build, &p.Read, &p.Queue, &p.Patch, &p.Ship, &p.Restart, &p.Ready}
}

// sample is one edit's measurements.
type sample struct {
	ms, hotpodMS, appMS float64
	bytes               int64
	phases              *Phases // hotpod's, when it reported them
}

func summarize(w, s, link string, samples []sample) Record {
	r := Record{Workload: w, Strategy: s, Link: link, Iterations: len(samples)}
	if len(samples) == 0 {
		return r
	}
	ms := make([]float64, len(samples))
	var hp, app []float64
	var bytes []float64
	for i, x := range samples {
		ms[i] = x.ms
		bytes = append(bytes, float64(x.bytes))
		if x.hotpodMS > 0 {
			hp = append(hp, x.hotpodMS)
		}
		if x.appMS > 0 {
			app = append(app, x.appMS)
		}
	}
	r.MedianMS, r.MinMS, r.MaxMS = Median(ms), minOf(ms), maxOf(ms)
	r.BytesSent = int64(Median(bytes))
	// A cross-check's median over some of the edits would compare other edits than MedianMS's:
	// a figure missing for any edit leaves it out, and Sane says so.
	if len(hp) == len(samples) {
		r.HotpodMS = Median(hp)
	}
	if len(app) == len(samples) {
		r.AppMS = Median(app)
	}
	r.Phases = medianPhases(samples)
	return r
}

// medianPhases is each phase's median over the samples, nil unless every sample has phases.
func medianPhases(samples []sample) *Phases {
	var m Phases
	for i, f := range m.fields() {
		v := make([]float64, 0, len(samples))
		for _, s := range samples {
			if s.phases == nil {
				return nil
			}
			v = append(v, *s.phases.fields()[i])
		}
		*f = Median(v)
	}
	return &m
}

// Median is the middle of v (the mean of the two middle values for an even count), 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// crossSlack is how far hotpod's or the app's figure may exceed the bench's own for the same
// edits: the agent's readiness probe (polled up to every 50 ms) can see the app after the bench
// does, and a pod's clock is not the bench's. Every figure counts from the edit, and the bench's
// ends later (when the new code answered through a port-forward), so more than this is a broken
// measurement, not noise.
const crossSlack = 100 // ms

// Sane checks what CI asserts of a quick run: every combination completed every edit, with
// times and sizes that are possible, and the cross-checks agree: hotpod's own figure is there for
// the strategies that run hotpod, the app's log line for every strategy, and neither says the
// new code was up later than the bench saw it answer. Speed is never asserted.
func Sane(rs []Record, iterations int) error { return sane(rs, iterations, true) }

// sane is Sane; phases says to expect hotpod's phases (runs from before the bench recorded
// them have none).
func sane(rs []Record, iterations int, phases bool) error {
	if len(rs) == 0 {
		return fmt.Errorf("bench: no results")
	}
	for _, r := range rs {
		name := r.Workload + " · " + r.Strategy + " · " + r.Link
		switch {
		case r.Iterations != iterations:
			return fmt.Errorf("bench: %s measured %d edits, want %d", name, r.Iterations, iterations)
		case r.MinMS <= 0 || r.MaxMS > answerTimeout.Seconds()*1000 || r.MinMS > r.MedianMS || r.MedianMS > r.MaxMS:
			return fmt.Errorf("bench: %s: impossible times %+v", name, r)
		case r.BytesSent <= 0:
			return fmt.Errorf("bench: %s: no bytes sent", name)
		case HotpodReports(r.Strategy) && r.HotpodMS <= 0:
			return fmt.Errorf("bench: %s: hotpod reported no edit_to_ready_ms for some edit", name)
		case phases && HotpodReports(r.Strategy) && (r.Phases == nil || r.Phases.Build <= 0):
			return fmt.Errorf("bench: %s: hotpod reported no phases (build_ms…) for some edit", name)
		case r.HotpodMS > r.MedianMS+crossSlack:
			return fmt.Errorf("bench: %s: hotpod says %.0f ms, later than the bench saw the new code answer (%.0f ms)", name, r.HotpodMS, r.MedianMS)
		case r.AppMS <= 0:
			return fmt.Errorf("bench: %s: the app's log line (\"listening … ms after the edit\") was missing for some edit", name)
		case r.AppMS > r.MedianMS+crossSlack:
			return fmt.Errorf("bench: %s: the app says it listened %.0f ms after the edit, later than the bench saw it answer (%.0f ms): is the pod's clock the bench's?", name, r.AppMS, r.MedianMS)
		}
	}
	return nil
}
