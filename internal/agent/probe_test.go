package agent_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
)

// A failing probe is reported on the events as it fails: at once, then at most every
// ProbeReportEvery with the count of failures in a row; the status says the same.
func TestProbeFailureIsReported(t *testing.T) {
	var port int
	f := startWith(t, t.TempDir(), func(cfg *agent.Config) {
		port, _ = strconv.Atoi(strings.TrimPrefix(cfg.Env[0], "PORT="))
		cfg.Env = append(cfg.Env, "HEALTH=404")
		cfg.Probe = &agentapi.Probe{HTTPGet: &agentapi.HTTPGetProbe{Port: port, Path: "/healthz"}}
	})
	events := make(chan agentapi.Event, 64)
	go f.client.Events(t.Context(), func(e agentapi.Event) { events <- e })
	want := "GET http://127.0.0.1:" + strconv.Itoa(port) + "/healthz → 404 Not Found"
	var failed []agentapi.Event
	start := time.Now()
	deadline := time.After(60 * time.Second)
	for len(failed) < 2 {
		select {
		case e := <-events:
			if e.Type == agentapi.EventProbeFailed && e.Error == want {
				failed = append(failed, e)
			}
		case <-deadline:
			t.Fatalf("probe_failed events %+v", failed)
		}
	}
	elapsed := time.Since(start)
	if failed[0].Probe != "GET http://127.0.0.1:"+strconv.Itoa(port)+"/healthz" || failed[0].Permanent {
		t.Fatalf("first report %+v", failed[0])
	}
	if failed[1].Failures <= failed[0].Failures {
		t.Fatalf("the count does not grow: %d then %d", failed[0].Failures, failed[1].Failures)
	}
	// Reports are spaced, not one per poll (every 1–50 ms).
	if gap := failed[1].Time.Sub(failed[0].Time); gap < agentapi.ProbeReportEvery {
		t.Fatalf("two reports %v apart, want at least %v", gap, agentapi.ProbeReportEvery)
	}
	st, err := f.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != agentapi.StateStarting || st.ProbeError != want || st.ProbeFailures < failed[1].Failures || st.Probe != failed[0].Probe {
		t.Fatalf("status %+v after %v", st, elapsed)
	}
}

// A probe that can never pass (its command is missing) is reported at once as permanent, and an
// update waiting for readiness answers then instead of waiting out its timeout.
func TestHopelessProbeAnswersAtOnce(t *testing.T) {
	f := startWith(t, t.TempDir(), func(cfg *agent.Config) {
		cfg.Probe = &agentapi.Probe{Exec: &agentapi.ExecProbe{Command: []string{"/bin/grpc_health_probe", "-addr=:8080"}}}
	})
	events := make(chan agentapi.Event, 64)
	go f.client.Events(t.Context(), func(e agentapi.Event) { events <- e })
	// The first report may come before this subscription: the next one is at most
	// ProbeReportEvery later.
	for {
		e := nextEvent(t, events)
		if e.Type == agentapi.EventProbeFailed {
			if !e.Permanent || !strings.Contains(e.Error, "exec /bin/grpc_health_probe -addr=:8080 → ") ||
				!strings.Contains(e.Error, "not found") || e.Failures < 1 {
				t.Fatalf("event %+v", e)
			}
			break
		}
	}
	res, err := f.client.Restart(t.Context(), agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: agentapi.MaxTimeout})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != agentapi.StateStarting || !strings.Contains(res.ProbeError, "not found") || res.ProbeFailures < 1 {
		t.Fatalf("restart answered %+v", res)
	}
}
