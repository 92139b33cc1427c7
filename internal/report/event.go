package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The kinds of event: the "event" member of every line of --output json.
const (
	KindReady       = "ready"
	KindBuildFailed = "build_failed"
	KindCrashed     = "crashed"
	KindFailed      = "ship_failed"
	KindInfo        = "info"
	KindForwarding  = "forwarding"
	KindProbeFailed = "probe_failed"
	KindSynced      = "synced"
	KindSlow        = "ship_slow"
	KindPaused      = "paused"
)

// Event is one line of --output json, decoded: Kind says which one of the other fields is set.
// It is the only schema of hotpod's events; the tests and `hotpod bench` read hotpod's output
// through it.
type Event struct {
	Kind        string
	Ready       *Ready
	BuildFailed *BuildFailed
	Crashed     *Crashed
	Failed      *Failed
	Info        *Info
	Forwarding  *Forwarding
	ProbeFailed *ProbeFailed
	Synced      *Synced
	Slow        *Slow
	Paused      *Paused
}

// payload is the field of e that Kind names, nil when none is.
func (e Event) payload() any {
	switch {
	case e.Ready != nil:
		return e.Ready
	case e.BuildFailed != nil:
		return e.BuildFailed
	case e.Crashed != nil:
		return e.Crashed
	case e.Failed != nil:
		return e.Failed
	case e.Info != nil:
		return e.Info
	case e.Forwarding != nil:
		return e.Forwarding
	case e.ProbeFailed != nil:
		return e.ProbeFailed
	case e.Synced != nil:
		return e.Synced
	case e.Slow != nil:
		return e.Slow
	case e.Paused != nil:
		return e.Paused
	}
	return nil
}

// Where names the service, pod and iteration e is about, where its kind has them ("" and 0
// where not: a build failure has no pod, a sync no iteration, a forwarding none of them).
func (e Event) Where() (service, pod string, iteration int) {
	switch {
	case e.Ready != nil:
		return e.Ready.Service, e.Ready.Pod, e.Ready.Iteration
	case e.BuildFailed != nil:
		return e.BuildFailed.Service, "", e.BuildFailed.Iteration
	case e.Crashed != nil:
		return e.Crashed.Service, e.Crashed.Pod, e.Crashed.Iteration
	case e.Failed != nil:
		return e.Failed.Service, e.Failed.Pod, e.Failed.Iteration
	case e.ProbeFailed != nil:
		return e.ProbeFailed.Service, e.ProbeFailed.Pod, e.ProbeFailed.Iteration
	case e.Synced != nil:
		return e.Synced.Service, e.Synced.Pod, 0
	case e.Slow != nil:
		return e.Slow.Service, e.Slow.Pod, e.Slow.Iteration
	case e.Paused != nil:
		return e.Paused.Service, e.Paused.Pod, e.Paused.Iteration
	case e.Info != nil:
		return e.Info.Service, "", 0
	}
	return "", "", 0
}

// String is the event as its JSON line, for messages about it.
func (e Event) String() string {
	p := e.payload()
	if p == nil {
		return fmt.Sprintf("{event %q}", e.Kind)
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// Decode reads one line of --output json. A line that is not an event of this schema (not JSON,
// an unknown kind, a member the kind does not have) is an error: hotpod and what reads its
// output are built from the same source, so a difference is a bug to see, not to skip.
func Decode(line []byte) (Event, error) {
	var head struct { // json.Unmarshal also refuses anything after the one value
		Event string `json:"event"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return Event{}, fmt.Errorf("not an event: %w", err)
	}
	e := Event{Kind: head.Event}
	var into any
	switch head.Event {
	case KindReady:
		e.Ready = &Ready{}
		into = e.Ready
	case KindBuildFailed:
		e.BuildFailed = &BuildFailed{}
		into = e.BuildFailed
	case KindCrashed:
		e.Crashed = &Crashed{}
		into = e.Crashed
	case KindFailed:
		e.Failed = &Failed{}
		into = e.Failed
	case KindInfo:
		e.Info = &Info{}
		into = e.Info
	case KindForwarding:
		e.Forwarding = &Forwarding{}
		into = e.Forwarding
	case KindProbeFailed:
		e.ProbeFailed = &ProbeFailed{}
		into = e.ProbeFailed
	case KindSynced:
		e.Synced = &Synced{}
		into = e.Synced
	case KindSlow:
		e.Slow = &Slow{}
		into = e.Slow
	case KindPaused:
		e.Paused = &Paused{}
		into = e.Paused
	case "":
		return Event{}, errors.New("not an event: no \"event\" member")
	default:
		return Event{}, fmt.Errorf("unknown event %q", head.Event)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return Event{}, fmt.Errorf("event %s: %w", head.Event, err)
	}
	return e, nil
}
