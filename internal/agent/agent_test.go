package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/testutil"
	"github.com/klauspost/compress/zstd"
)

const token = "s3cret"

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// leftovers lists hotpod's files beside the binary app in dir but the binary's record: what a
// settled agent has removed.
func leftovers(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, ".app.hotpod-*"))
	return slices.DeleteFunc(m, func(p string) bool { return filepath.Base(p) == ".app.hotpod-sha256" })
}

// settled waits until dir holds only the binary app and its record (the old binaries are
// removed in the background) and returns the SHA-256 the record holds.
func settled(t testing.TB, dir string) string {
	t.Helper()
	var names []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		names = names[:0]
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if slices.Equal(names, []string{".app.hotpod-sha256", "app"}) {
			return strings.TrimSpace(string(read(t, filepath.Join(dir, ".app.hotpod-sha256"))))
		}
		if time.Now().After(deadline) {
			t.Fatalf("beside the binary: %v, want only app and .app.hotpod-sha256", names)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encode makes the patch from base to target (nil: a full one) at level.
func encode(t testing.TB, base, target []byte, level zstd.EncoderLevel) []byte {
	t.Helper()
	p, err := delta.Encode(base, target, level)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fixture struct {
	sup    *agent.Supervisor
	client *agentapi.Client
	port   int
	bin    string
	out    *testutil.SyncBuffer
}

// start runs a supervisor of child-v1 (serving HTTP on a free port, with a tcp probe) behind the
// control API.
func start(t testing.TB, env ...string) *fixture {
	t.Helper()
	return startIn(t, t.TempDir(), env...)
}

func startIn(t testing.TB, dir string, env ...string) *fixture {
	t.Helper()
	return startWith(t, dir, func(c *agent.Config) { c.Env = append(c.Env, env...) })
}

// startWith is startIn with the config changed by edit before the supervisor starts.
func startWith(t testing.TB, dir string, edit func(*agent.Config)) *fixture {
	t.Helper()
	f := &fixture{port: testutil.FreePort(t), bin: filepath.Join(dir, "app"), out: &testutil.SyncBuffer{}}
	copyFile(t, childV1, f.bin)
	cfg := agent.Config{
		Command: []string{f.bin}, Env: []string{"PORT=" + strconv.Itoa(f.port)},
		Grace: 5 * time.Second, Probe: &agentapi.Probe{TCPSocket: &agentapi.TCPProbe{Port: f.port}},
		Stdout: f.out, Stderr: f.out,
	}
	edit(&cfg)
	var err error
	f.sup, err = agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sup.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sup.Shutdown(0) })
	srv := httptest.NewServer(agent.Handler(f.sup, token))
	t.Cleanup(srv.Close)
	f.client = &agentapi.Client{Base: srv.URL, Token: token}
	return f
}

func (f *fixture) get(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(f.port))
	if err != nil {
		t.Fatalf("app not answering: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (f *fixture) waitReady(t testing.TB) agentapi.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := f.client.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.State == agentapi.StateReady || st.State == agentapi.StateExited || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var waitReady = agentapi.UpdateParams{Wait: agentapi.WaitReady, Timeout: 30 * time.Second}

func TestUpdateSwapsBinaryAndRestarts(t *testing.T) {
	v1, v2 := read(t, childV1), read(t, childV2)
	patches := map[string][]byte{"raw": delta.EncodeRaw(v2)}
	var err error
	if patches["delta"], err = delta.Encode(v1, v2, zstd.SpeedBetterCompression); err != nil {
		t.Fatal(err)
	}
	if patches["full"], err = delta.Encode(nil, v2, zstd.SpeedFastest); err != nil {
		t.Fatal(err)
	}
	for kind, patch := range patches {
		t.Run(kind, func(t *testing.T) {
			f := start(t)
			before := f.waitReady(t)
			if before.State != agentapi.StateReady || before.SHA256 != delta.Sum(v1).String() {
				t.Fatalf("before: %+v", before)
			}
			if got := f.get(t); got != "v1" {
				t.Fatalf("before update app says %q", got)
			}
			res, err := f.client.Update(t.Context(), patch, waitReady)
			if err != nil {
				t.Fatal(err)
			}
			if res.State != agentapi.StateReady || res.SHA256 != delta.Sum(v2).String() || res.Restarts != 1 || res.PID == before.PID {
				t.Fatalf("after: %+v", res)
			}
			if got := f.get(t); got != "v2" {
				t.Fatalf("after update app says %q", got)
			}
			if !bytes.Equal(read(t, f.bin), v2) {
				t.Fatal("binary on disk is not v2")
			}
			if rec := settled(t, filepath.Dir(f.bin)); rec != res.SHA256 {
				t.Fatalf("the record says %s, the binary is %s", rec, res.SHA256)
			}
		})
	}
}

func TestBadPatchKeepsOldRunning(t *testing.T) {
	v1, v2 := read(t, childV1), read(t, childV2)
	good := encode(t, v1, v2, zstd.SpeedBetterCompression)
	otherBase := encode(t, v2, v1, zstd.SpeedBetterCompression)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	rawCorrupt := delta.EncodeRaw(v2)
	rawCorrupt[len(rawCorrupt)-100] ^= 0x01
	cases := []struct {
		name  string
		patch []byte
		code  int
		msg   string
	}{
		{"truncated", good[:len(good)-10], 400, "corrupt"},
		{"truncated-header", good[:20], 400, "truncated"},
		{"corrupt", corrupt, 400, "corrupt"},
		{"raw-bit-flip", rawCorrupt, 400, "SHA-256"},
		{"wrong-base", otherBase, 409, "another base"},
		{"not-a-patch", []byte("hello"), 400, "truncated"},
		{"empty", []byte{}, 400, "truncated"},
	}
	f := start(t)
	before := f.waitReady(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.client.Update(t.Context(), c.patch, waitReady)
			var ae *agentapi.APIError
			if !errors.As(err, &ae) || ae.Code != c.code || !strings.Contains(ae.Message, c.msg) {
				t.Fatalf("got %v, want %d with %q", err, c.code, c.msg)
			}
			after := f.waitReady(t)
			if after.PID != before.PID || after.SHA256 != before.SHA256 || after.Restarts != 0 || after.State != agentapi.StateReady {
				t.Fatalf("state changed: before %+v after %+v", before, after)
			}
			if got := f.get(t); got != "v1" {
				t.Fatalf("app says %q", got)
			}
			if !bytes.Equal(read(t, f.bin), v1) {
				t.Fatal("binary on disk changed")
			}
		})
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	f := start(t)
	before := f.waitReady(t)
	for _, tok := range []string{"", "wrong", token + "x"} {
		bad := &agentapi.Client{Base: f.client.Base, Token: tok}
		_, err := bad.Update(t.Context(), delta.EncodeRaw(read(t, childV2)), waitReady)
		var ae *agentapi.APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: update got %v, want 401", tok, err)
		}
		if _, err := bad.Restart(t.Context(), waitReady); !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: restart got %v, want 401", tok, err)
		}
		if _, err := bad.Status(t.Context()); !errors.As(err, &ae) || ae.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: status got %v, want 401", tok, err)
		}
	}
	after := f.waitReady(t)
	if after.PID != before.PID || after.SHA256 != before.SHA256 || after.Restarts != 0 {
		t.Fatalf("state changed: before %+v after %+v", before, after)
	}
}

func TestCrashKeepsAgentAndNextBinaryRuns(t *testing.T) {
	f := start(t, "CRASH=3")
	st := f.waitReady(t)
	if st.State != agentapi.StateExited || st.ExitCode == nil || *st.ExitCode != 3 {
		t.Fatalf("want exited with 3, got %+v", st)
	}
	if !strings.Contains(strings.Join(st.LastOutput, "\n"), "boom") {
		t.Fatalf("last output %q lacks the crash message", st.LastOutput)
	}
	// The agent still answers and takes a new binary; it crashes the same way (same env),
	// and the result says so instead of hanging.
	res, err := f.client.Update(t.Context(), delta.EncodeRaw(read(t, childV2)), waitReady)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != agentapi.StateExited || res.ExitCode == nil || *res.ExitCode != 3 || res.SHA256 != delta.Sum(read(t, childV2)).String() {
		t.Fatalf("after update: %+v", res)
	}
}

func TestEventsReportStartReadyExit(t *testing.T) {
	f := start(t)
	f.waitReady(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events := make(chan agentapi.Event, 16)
	go f.client.Events(ctx, func(e agentapi.Event) { events <- e })
	next := func() agentapi.Event {
		select {
		case e := <-events:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
		}
		return agentapi.Event{}
	}
	if e := next(); e.Type != "status" || e.Status == nil || e.Status.State != agentapi.StateReady {
		t.Fatalf("first event %+v", e)
	}
	if _, err := f.client.Restart(t.Context(), waitReady); err != nil {
		t.Fatal(err)
	}
	var types []string
	for len(types) < 3 {
		// A probe that fails while the app comes up is reported too (probe_failed); not here.
		if e := next(); e.Type != agentapi.EventProbeFailed {
			types = append(types, e.Type)
		}
	}
	if strings.Join(types, ",") != "stopped,started,ready" {
		t.Fatalf("events %v", types)
	}
	// The app exiting on its own is reported with its code.
	f.sup.Signal(syscall.SIGTERM)
	e := next()
	if e.Type != "exited" || e.ExitCode == nil || *e.ExitCode != 0 {
		t.Fatalf("event %+v", e)
	}
}

func TestLogsStreamAppOutput(t *testing.T) {
	f := start(t)
	f.waitReady(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got testutil.SyncBuffer
	go f.client.Logs(ctx, &got)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(got.String(), "got hangup") {
		f.sup.Signal(syscall.SIGHUP) // the child prints a line for each
		if time.Now().After(deadline) {
			t.Fatalf("log stream has %q; passthrough %q", got.String(), f.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(f.out.String(), "started v1") {
		t.Fatalf("passthrough output %q", f.out.String())
	}
}

// The agent as a process: signals forwarded, the app's exit code passed through.
func TestAgentProcessForwardsSignalsAndExitCode(t *testing.T) {
	cases := []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 7}, {syscall.SIGINT, 7}, {syscall.SIGQUIT, 7}}
	for _, c := range cases {
		t.Run(c.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "app")
			copyFile(t, childV1, bin)
			addr := filepath.Join(dir, "addr")
			var out testutil.SyncBuffer
			cmd := exec.Command(agentBin, "--listen", "127.0.0.1:0", "--addr-file", addr, "--", bin)
			cmd.Env = append(os.Environ(), "HOTPOD_TOKEN="+token, "EXIT_ON_TERM="+strconv.Itoa(c.code))
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitFor(t, func() bool { return strings.Contains(out.String(), "started v1") })
			cmd.Process.Signal(syscall.SIGHUP)
			waitFor(t, func() bool { return strings.Contains(out.String(), "got hangup") })
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("agent exit: %v, want code %d; output:\n%s", err, c.code, out.String())
			}
			if !strings.Contains(out.String(), "got "+c.sig.String()) {
				t.Fatalf("app did not get %v:\n%s", c.sig, out.String())
			}
		})
	}
}

func TestAgentRefusesNonLoopbackAndMissingToken(t *testing.T) {
	cases := []struct {
		args []string
		env  string
		msg  string
	}{
		{[]string{"--listen", "0.0.0.0:0", "--", childV1}, "HOTPOD_TOKEN=x", "loopback"},
		{[]string{"--", childV1}, "HOTPOD_TOKEN=", "no session token"},
		{[]string{}, "HOTPOD_TOKEN=x", "no command"},
		{[]string{"--ready", "udp:1", "--", childV1}, "HOTPOD_TOKEN=x", "ready probe"},
		{[]string{"--stop-signal", "FOO", "--", childV1}, "HOTPOD_TOKEN=x", "stop signal"},
		{[]string{"--stop-policy", "gentle", "--", childV1}, "HOTPOD_TOKEN=x", "stop policy"},
		{[]string{"--probe", `{"httpGet":{"port":8080}`, "--", childV1}, "HOTPOD_TOKEN=x", "--probe"},
		{[]string{"--probe", `{"httpGet":{"port":8080},"tcpSocket":{"port":1}}`, "--", childV1}, "HOTPOD_TOKEN=x", "exactly one"},
		{[]string{"--probe", `{"httpGet":{"port":8080,"paht":"/x"}}`, "--", childV1}, "HOTPOD_TOKEN=x", "unknown field"},
		{[]string{"--probe", `{"tcpSocket":{"port":1}}`, "--ready", "tcp:1", "--", childV1}, "HOTPOD_TOKEN=x", "both"},
		{[]string{"--sync-seed", "/tmp", "--", childV1}, "HOTPOD_TOKEN=x", "--sync-seed needs --sync-dir"},
	}
	for _, c := range cases {
		// Bounded: an agent that wrongly accepts its flags would otherwise run on.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, agentBin, append([]string{"--listen", "127.0.0.1:0"}, c.args...)...)
		if len(c.args) > 0 && c.args[0] == "--listen" {
			cmd = exec.CommandContext(ctx, agentBin, c.args...)
		}
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.msg) {
			t.Errorf("%v: err %v, output %q; want exit 2 with %q", c.args, err, out, c.msg)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A full disk while writing the new binary: 507, nothing left behind, the old version serves on.
func TestDiskFullKeepsOldRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	v1 := read(t, childV1)
	dir := t.TempDir()
	// Room for the running binary and a little more, not for a second copy.
	size := len(v1) + len(v1)/2
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("running as root, yet cannot mount a tmpfs: %v %s", err, out) // CI runs as root: a skip would hide the test
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	f := startIn(t, dir)
	before := f.waitReady(t)
	_, err := f.client.Update(t.Context(), delta.EncodeRaw(read(t, childV2)), waitReady)
	var ae *agentapi.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusInsufficientStorage || !strings.Contains(ae.Message, "no space") {
		t.Fatalf("got %v, want 507 no space", err)
	}
	after := f.waitReady(t)
	if after.PID != before.PID || after.SHA256 != before.SHA256 || f.get(t) != "v1" {
		t.Fatalf("state changed: %+v → %+v", before, after)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left-over files: %v", entries)
	}
}

// A volume with room for two binaries takes update after update: the old binary's removal runs
// after the answer, and the next update waits for it before it writes.
func TestRoomForTwoBinariesSuffices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	v1, v2 := read(t, childV1), read(t, childV2)
	dir := t.TempDir()
	size := len(v1) + len(v2) + max(len(v1), len(v2))/2
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("running as root, yet cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	f := startIn(t, dir)
	f.waitReady(t)
	started := agentapi.UpdateParams{Wait: agentapi.WaitStarted, Timeout: 30 * time.Second}
	for i := range 6 {
		v := [][]byte{v2, v1}[i%2]
		if res, err := f.client.Update(t.Context(), delta.EncodeRaw(v), started); err != nil || res.SHA256 != delta.Sum(v).String() {
			t.Fatalf("update %d: %+v %v", i, res, err)
		}
	}
	if rec := settled(t, dir); rec != delta.Sum(v1).String() {
		t.Fatalf("the record says %s, the binary is v1", rec)
	}
}

// As PID 1 (in a PID namespace of its own) the agent reaps orphans: a grandchild of the app that
// outlives it is reparented to the agent and must not stay a zombie.
func TestAgentAsPID1ReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("running as root, yet no unshare: install util-linux") // CI runs as root: a skip would hide the test
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	copyFile(t, childV1, bin)
	var out testutil.SyncBuffer
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", agentBin, "--listen", "127.0.0.1:0", "--", bin)
	cmd.Env = append(os.Environ(), "HOTPOD_TOKEN="+token, "ORPHAN=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, func() bool { return strings.Contains(out.String(), "orphaned") })
	agentPID := childOf(t, cmd.Process.Pid) // unshare forks; the agent is its child, PID 1 inside
	// The grandchild lives 200 ms after the app exits; then it must be gone, not a zombie.
	deadline := time.Now().Add(20 * time.Second)
	for {
		kids := children(agentPID)
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent (pid %d) left children %v; output:\n%s", agentPID, kids, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children lists the pids whose parent is pid, with their state (Z for a zombie).
func children(pid int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, e.Name()+":"+fields[0])
		}
	}
	return out
}

func childOf(t *testing.T, pid int) int {
	t.Helper()
	var kids []string
	waitFor(t, func() bool { kids = children(pid); return len(kids) > 0 })
	n, _ := strconv.Atoi(strings.SplitN(kids[0], ":", 2)[0])
	return n
}

// TestExitWithApp: in a Job's container the agent ends with the app, with its exit code; by
// default it stays up for the next binary.
func TestExitWithApp(t *testing.T) {
	for _, c := range []struct {
		flag bool
		code string
	}{{true, "3"}, {true, "0"}, {false, "3"}} {
		t.Run(fmt.Sprintf("exit-with-app=%v/code=%s", c.flag, c.code), func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "app")
			copyFile(t, childV1, bin)
			args := []string{"--listen", "127.0.0.1:0", "--addr-file", filepath.Join(dir, "addr")}
			if c.flag {
				args = append(args, "--exit-with-app")
			}
			var out testutil.SyncBuffer
			cmd := exec.Command(agentBin, append(args, "--", bin)...)
			cmd.Env = append(os.Environ(), "HOTPOD_TOKEN="+token, "CRASH="+c.code)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				got := 0
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if !c.flag || strconv.Itoa(got) != c.code {
					t.Fatalf("agent ended with code %d (exit-with-app %v, app code %s); output:\n%s", got, c.flag, c.code, out.String())
				}
			case <-time.After(5 * time.Second):
				if c.flag {
					t.Fatalf("the agent did not end with the app; output:\n%s", out.String())
				}
				// Without the flag it waits for the next binary: still up after the app is gone.
				waitFor(t, func() bool { return strings.Contains(out.String(), "boom") })
			}
		})
	}
}

// The agent as a process reaps every child (PID 1 or subreaper), and an exec probe's command is
// one of them: its exit status reaches the probe all the same.
func TestAgentProcessExecProbe(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	copyFile(t, childV1, bin)
	port := testutil.FreePort(t)
	probe := `{"exec":{"command":["sh","-c","test \"$PORT\" = ` + strconv.Itoa(port) + `"]},"timeoutSeconds":5}`
	addr := filepath.Join(dir, "addr")
	var out testutil.SyncBuffer
	cmd := exec.Command(agentBin, "--listen", "127.0.0.1:0", "--addr-file", addr, "--probe", probe, "--", bin)
	cmd.Env = append(os.Environ(), "HOTPOD_TOKEN="+token, "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var c *agentapi.Client
	waitFor(t, func() bool {
		b, err := os.ReadFile(addr)
		if err == nil && len(b) > 0 {
			c = &agentapi.Client{Base: "http://" + string(b), Token: token}
		}
		return c != nil
	})
	var st agentapi.Status
	waitFor(t, func() bool {
		var err error
		st, err = c.Status(t.Context())
		return err == nil && st.State == agentapi.StateReady
	})
	if !strings.HasPrefix(st.Probe, "exec sh -c") || st.ProbeFailures != 0 {
		t.Fatalf("status %+v\n%s", st, out.String())
	}
}
