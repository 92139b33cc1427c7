// Package agentapi is the wire contract between the hotpod CLI and the agent: paths, the
// authentication header, and the JSON documents both sides exchange. It also holds the CLI's
// client. Standard library only: the agent imports it.
package agentapi

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ProtocolVersion numbers this contract (the /v1 paths and their documents); a change that an
// older agent or CLI would misread takes the next number.
const ProtocolVersion = 1

// Paths of the agent's control API. Every request carries the session token.
const (
	PathStatus  = "/v1/status"  // GET: Status
	PathUpdate  = "/v1/update"  // POST body = a delta.Patch; query: UpdateParams; reply: UpdateResult
	PathRestart = "/v1/restart" // POST; query: UpdateParams (wait, timeout); reply: UpdateResult
	PathEvents  = "/v1/events"  // GET: newline-delimited Events, the current state first
	PathLogs    = "/v1/logs"    // GET: the app's output as it is written
	// PathFiles + a relative path (slash-separated, each segment path-escaped) names a file in
	// the agent's sync dir. PUT ?sha256=HEX, body = the file: written atomically, the app is not
	// restarted; DELETE removes it (a directory with what it holds). See CheckFilePath.
	PathFiles = "/v1/files/"
	// PathDebugDelve: PUT ?sha256=HEX (and UpdateParams), body = a dlv binary for this platform.
	// The agent (started with --debug) verifies it, renames it into place and runs the app under
	// it from then on (a restart); reply: UpdateResult. 404 when the agent was started without
	// --debug.
	PathDebugDelve = "/v1/debug/dlv"
	// PathDebugConnect: GET with "Connection: Upgrade" and "Upgrade: " + DebugUpgrade; the agent
	// answers 101 and the connection then carries Delve's own protocol (JSON-RPC v2 or DAP, as
	// the client speaks) to the dlv the app runs under. 503 while there is none.
	PathDebugConnect = "/v1/debug/connect"
)

// DebugUpgrade is the Upgrade token of PathDebugConnect.
const DebugUpgrade = "hotpod-debug"

// Event types of PathEvents.
const (
	EventStatus      = "status"       // first line: Status
	EventStarted     = "started"      // PID, SHA256
	EventReady       = "ready"        // PID, AfterMS since start
	EventStopped     = "stopped"      // stopped by the agent: PID, ExitCode, AfterMS it ran
	EventExited      = "exited"       // exited on its own: PID, ExitCode, AfterMS, LastOutput
	EventProbeFailed = "probe_failed" // PID, Probe, Error, Failures, Permanent
	EventPaused      = "paused"       // stopped in the debugger: PID, At
	EventResumed     = "resumed"      // running again after a pause: PID
)

// TokenHeader carries the session token as "Bearer <token>".
const TokenHeader = "Authorization"

// State of the supervised app.
type State string

const (
	StateStarting State = "starting" // process started, readiness probe not yet passed
	StateReady    State = "ready"    // probe passed (or no probe configured)
	StateExited   State = "exited"   // exited on its own; the agent waits for the next binary
	StateStopped  State = "stopped"  // stopped by the agent (shutdown)
	// StatePaused: stopped in the debugger (a breakpoint, a client's halt, an unrecovered panic,
	// or the entry of a new build that waits for the client that ran the old one). Not a
	// failure: its readiness cannot pass until a debugger client lets it run.
	StatePaused State = "paused"
)

// DebugStatus is the debugger's part of Status, for an agent started with --debug.
type DebugStatus struct {
	// Delve is the SHA-256 of the dlv the agent has ("" until PathDebugDelve put one).
	Delve string `json:"delve,omitempty"`
	// Active: the app runs under that dlv and PathDebugConnect reaches it.
	Active bool `json:"active"`
	// Clients is the number of debugger connections open through the agent.
	Clients int `json:"clients"`
	// At says where a paused app stopped ("main.go:31 main.handler (breakpoint 1)").
	At string `json:"at,omitempty"`
	// SwapPending: a new binary arrived while a client held the app paused; it is swapped in
	// when the app runs again (or when no client is connected any more).
	SwapPending bool `json:"swap_pending,omitempty"`
	// Error says why the app cannot run under the debugger (a command that runs the binary
	// through a shell script).
	Error string `json:"error,omitempty"`
}

// Status is the agent's answer to PathStatus.
type Status struct {
	SHA256   string `json:"sha256"` // of the binary on disk, which is the one running
	Size     int64  `json:"size"`
	PID      int    `json:"pid,omitempty"`
	State    State  `json:"state"`
	Restarts int    `json:"restarts"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// LastOutput holds the app's last lines once it has exited, so a crash can be shown.
	LastOutput []string `json:"last_output,omitempty"`
	Binary     string   `json:"binary"`
	// Probe describes the readiness check (Probe.String); ProbeError is its last failure and
	// ProbeFailures the failures in a row, while the app is starting.
	Probe         string `json:"probe,omitempty"`
	ProbeError    string `json:"probe_error,omitempty"`
	ProbeFailures int    `json:"probe_failures,omitempty"`
	// Debug is set for an agent started with --debug.
	Debug *DebugStatus `json:"debug,omitempty"`
}

// Wait says how long an update or restart request blocks before it answers.
type Wait string

const (
	WaitStarted Wait = "started" // answer once the new process runs
	WaitReady   Wait = "ready"   // answer once the probe passes or the process exits
)

// UpdateParams are the query parameters of PathUpdate and PathRestart.
type UpdateParams struct {
	Wait    Wait
	Timeout time.Duration // bound on the Wait; the agent answers with the state it reached
}

// DefaultTimeout bounds a wait for readiness when the client names none.
const DefaultTimeout = 60 * time.Second

// MaxTimeout is the longest wait a client may ask for.
const MaxTimeout = 10 * time.Minute

// Encode writes p as query parameters.
func (p UpdateParams) Encode() string {
	v := url.Values{}
	if p.Wait != "" {
		v.Set("wait", string(p.Wait))
	}
	if p.Timeout > 0 {
		v.Set("timeout_ms", strconv.FormatInt(p.Timeout.Milliseconds(), 10))
	}
	return v.Encode()
}

// ParseUpdateParams reads the query of an update or restart request.
func ParseUpdateParams(q url.Values) (UpdateParams, error) {
	p := UpdateParams{Wait: WaitStarted, Timeout: DefaultTimeout}
	switch w := Wait(q.Get("wait")); w {
	case "":
	case WaitStarted, WaitReady:
		p.Wait = w
	default:
		return p, fmt.Errorf("wait=%q: want %q or %q", w, WaitStarted, WaitReady)
	}
	if s := q.Get("timeout_ms"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 || ms > MaxTimeout.Milliseconds() {
			return p, fmt.Errorf("timeout_ms=%q: want a whole number of milliseconds from 1 to %d", s, MaxTimeout.Milliseconds())
		}
		p.Timeout = time.Duration(ms) * time.Millisecond
	}
	return p, nil
}

// UpdateResult answers PathUpdate and PathRestart: what the agent did and how long each step took.
type UpdateResult struct {
	Status
	// ApplyMS: what decoding, verifying and writing the new binary beside the old one cost after
	// the patch's last byte arrived; the rest overlaps the transfer (for a small patch nearly
	// all of it: a 30 MB binary's write reads as ~3 ms here, the ship phase holds the whole).
	ApplyMS float64 `json:"apply_ms"`
	// RestartMS: from the stop signal to the old process until the new one runs.
	RestartMS float64 `json:"restart_ms"`
	// ReadyMS: from the new process's start until the probe passed (0 without a probe or
	// when it did not pass).
	ReadyMS float64 `json:"ready_ms"`
}

// Event is one line of PathEvents.
type Event struct {
	Type     string    `json:"type"` // one of the Event* constants
	Time     time.Time `json:"time"`
	PID      int       `json:"pid,omitempty"`
	SHA256   string    `json:"sha256,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	// AfterMS is, for "ready", the time since start; for "exited", the time the process ran.
	AfterMS    float64  `json:"after_ms,omitempty"`
	LastOutput []string `json:"last_output,omitempty"`
	Status     *Status  `json:"status,omitempty"`
	// For "probe_failed": the check (Probe.String), why it failed ("GET http://127.0.0.1:8080/healthz
	// → 404 Not Found"), the failures in a row, and whether it can never pass (an exec probe whose
	// command is missing or not executable). Sent on the first failure, then at most every
	// ProbeReportEvery while it keeps failing.
	Probe     string `json:"probe,omitempty"`
	Error     string `json:"error,omitempty"`
	Failures  int    `json:"failures,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	// For "paused": where the app stopped (DebugStatus.At).
	At string `json:"at,omitempty"`
}

// ProbeReportEvery spaces the probe_failed events of a probe that keeps failing.
const ProbeReportEvery = 2 * time.Second

// CheckFilePath says whether rel may name a file under the sync dir: relative, slash-separated,
// clean (no empty, "." or ".." segments, no backslash or NUL). The agent also refuses a path
// that leaves the dir through a symlink.
func CheckFilePath(rel string) error {
	if rel == "" {
		return fmt.Errorf("file path is empty: name a file relative to the sync dir")
	}
	if strings.HasPrefix(rel, "/") {
		return fmt.Errorf("file path %q is absolute: name it relative to the sync dir", rel)
	}
	if strings.ContainsAny(rel, "\\\x00") {
		return fmt.Errorf("file path %q has a backslash or NUL: use / between segments", rel)
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("file path %q is not clean (empty, . or .. segment): it must stay inside the sync dir", rel)
		}
	}
	return nil
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Ms converts a duration to fractional milliseconds for the JSON documents.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
