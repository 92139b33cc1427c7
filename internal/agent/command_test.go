package agent_test

import (
	"io"
	"net/http"
	"os"
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
)

func getPath(t *testing.T, port int, path string) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The container's command is not the binary: whatever runs it (a shell, an init like tini or
// dumb-init, a name on PATH), the swapped binary runs with its own arguments, and a restart
// restarts the whole command.
func TestCommandShapesRunTheSwappedBinary(t *testing.T) {
	wrapDir := t.TempDir()
	copyFile(t, wrapperBin, filepath.Join(wrapDir, "tini"))
	copyFile(t, wrapperBin, filepath.Join(wrapDir, "dumb-init"))
	cases := []struct {
		name    string
		command func(bin string) []string
		path    string // PATH of the app's environment
	}{
		{"direct", func(bin string) []string { return []string{bin, "--x", "1"} }, ""},
		{"sh -c exec", func(bin string) []string { return []string{"sh", "-c", "exec " + bin + " --x 1"} }, "/usr/bin:/bin"},
		{"sh -c child", func(bin string) []string { return []string{"/bin/sh", "-c", bin + " --x 1; echo done"} }, ""},
		{"tini --", func(bin string) []string { return []string{"tini", "--", bin, "--x", "1"} }, wrapDir},
		{"dumb-init", func(bin string) []string { return []string{filepath.Join(wrapDir, "dumb-init"), bin, "--x", "1"} }, ""},
		{"on PATH", func(bin string) []string { return []string{"app", "--x", "1"} }, "/nonexistent:" + "BINDIR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			f := startWith(t, dir, func(cfg *agent.Config) {
				cfg.Binary = filepath.Join(dir, "app")
				cfg.Command = c.command(cfg.Binary)
				if c.path != "" {
					cfg.Env = append(cfg.Env, "PATH="+strings.ReplaceAll(c.path, "BINDIR", dir))
				}
			})
			before := f.waitReady(t)
			if before.State != agentapi.StateReady || before.SHA256 != delta.Sum(read(t, childV1)).String() {
				t.Fatalf("before: %+v; output:\n%s", before, f.out.String())
			}
			if got := getPath(t, f.port, "/"); got != "v1" {
				t.Fatalf("app says %q", got)
			}
			if got := getPath(t, f.port, "/args"); got != "--x 1" {
				t.Fatalf("app got arguments %q, want --x 1", got)
			}
			res, err := f.client.Update(t.Context(), delta.EncodeRaw(read(t, childV2)), waitReady)
			if err != nil {
				t.Fatal(err)
			}
			if res.State != agentapi.StateReady || res.PID == before.PID || res.Restarts != 1 {
				t.Fatalf("after: %+v; output:\n%s", res, f.out.String())
			}
			if got := getPath(t, f.port, "/"); got != "v2" {
				t.Fatalf("after the update the app says %q", got)
			}
			if got := getPath(t, f.port, "/args"); got != "--x 1" {
				t.Fatalf("after the update the app got arguments %q", got)
			}
			// The pid the agent reports is the command's (the wrapper's): it is a new one, and
			// the old one is gone.
			if err := syscall.Kill(before.PID, 0); err == nil && !isZombie(before.PID) {
				t.Fatalf("the old command (pid %d) still runs", before.PID)
			}
		})
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// A command that cannot start at all is reported like a crash, with the shell's code and the
// reason as its output, and the agent stays up.
func TestCommandNotFoundIsReported(t *testing.T) {
	for _, c := range []struct {
		name    string
		command []string
		code    int
		msg     string
	}{
		{"missing", []string{"/nonexistent/tini", "--"}, 127, "not found"},
		{"not on PATH", []string{"no-such-init"}, 127, "not found in $PATH"},
		{"not executable", []string{"NOTEXEC"}, 126, "not executable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			notExec := filepath.Join(dir, "notexec")
			if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			f := startWith(t, dir, func(cfg *agent.Config) {
				cfg.Binary = filepath.Join(dir, "app")
				cfg.Command = c.command
				if c.command[0] == "NOTEXEC" {
					cfg.Command = []string{notExec}
				}
			})
			st := f.waitReady(t)
			if st.State != agentapi.StateExited || st.ExitCode == nil || *st.ExitCode != c.code ||
				!strings.Contains(strings.Join(st.LastOutput, "\n"), c.msg) {
				t.Fatalf("status %+v, want exited %d with %q", st, c.code, c.msg)
			}
			if !strings.Contains(f.out.String(), c.msg) {
				t.Fatalf("stderr %q lacks the reason", f.out.String())
			}
		})
	}
}

// A crash within milliseconds of the start is reported with its code and its stderr, to a
// client that asks after the fact (status, the events' first line) and to one that follows the
// events as it happens.
func TestCrashAtStartIsReported(t *testing.T) {
	dir := t.TempDir()
	f := startWith(t, dir, func(cfg *agent.Config) {
		cfg.Binary = filepath.Join(dir, "app")
		cfg.Command = []string{"/bin/sh", "-c", "echo about to fail; echo 'fatal: no config' >&2; exit 4"}
	})
	st := f.waitReady(t)
	// stdout and stderr are two pipes: their lines may come in either order.
	if st.State != agentapi.StateExited || st.ExitCode == nil || *st.ExitCode != 4 || len(st.LastOutput) != 2 ||
		!slices.Contains(st.LastOutput, "about to fail") || !slices.Contains(st.LastOutput, "fatal: no config") {
		t.Fatalf("status %+v", st)
	}
	events := make(chan agentapi.Event, 16)
	go f.client.Events(t.Context(), func(e agentapi.Event) { events <- e })
	e := <-events
	if e.Type != agentapi.EventStatus || e.Status.ExitCode == nil || *e.Status.ExitCode != 4 {
		t.Fatalf("first event %+v", e)
	}
	if _, err := f.client.Restart(t.Context(), waitReady); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Type != agentapi.EventExited {
				continue
			}
			if e.ExitCode == nil || *e.ExitCode != 4 || !strings.Contains(strings.Join(e.LastOutput, "|"), "fatal: no config") {
				t.Fatalf("exited event %+v", e)
			}
			return
		case <-deadline:
			t.Fatal("no exited event after the restart")
		}
	}
}

// A restart stops the app's whole process group: a worker child that ignores SIGTERM and holds a
// port does not outlive the restart, and the new app's worker binds the same port.
func TestRestartStopsTheProcessGroup(t *testing.T) {
	for _, policy := range []agent.StopPolicy{agent.StopFast, agent.StopGraceful, agent.StopKill} {
		t.Run(string(policy), func(t *testing.T) {
			hold := testutil.FreePort(t)
			f := startWith(t, t.TempDir(), func(cfg *agent.Config) {
				cfg.Env = append(cfg.Env, "HOLD_CHILD="+strconv.Itoa(hold))
				cfg.StopPolicy = policy
				cfg.Grace = 500 * time.Millisecond
			})
			f.waitReady(t)
			var oldHolder string
			waitFor(t, func() bool {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(hold))
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				oldHolder = string(b)
				return true
			})
			if _, err := f.client.Restart(t.Context(), waitReady); err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(oldHolder)
			if !isZombie(pid) {
				t.Fatalf("the old app's worker %d survived the restart", pid)
			}
			var newHolder string
			waitFor(t, func() bool {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(hold))
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				newHolder = string(b)
				return newHolder != oldHolder
			})
			if strings.Contains(f.out.String(), "address already in use") {
				t.Fatalf("the new worker could not bind:\n%s", f.out.String())
			}
		})
	}
}

// The stop policies: graceful lets the app exit on its own signal (its exit code is reported),
// kill sends none, fast kills an app that drains for longer than FastGrace.
func TestStopPolicies(t *testing.T) {
	cases := []struct {
		policy  agent.StopPolicy
		env     string
		code    int
		gotTerm bool
	}{
		{agent.StopGraceful, "EXIT_ON_TERM=7", 7, true},
		{agent.StopFast, "EXIT_ON_TERM=7", 7, true},
		{agent.StopFast, "DRAIN=60s", 128 + 9, true},
		{agent.StopKill, "EXIT_ON_TERM=7", 128 + 9, false},
	}
	for _, c := range cases {
		t.Run(string(c.policy)+"/"+c.env, func(t *testing.T) {
			f := startWith(t, t.TempDir(), func(cfg *agent.Config) {
				cfg.Env = append(cfg.Env, c.env)
				cfg.StopPolicy = c.policy
				cfg.Grace = time.Minute
			})
			f.waitReady(t)
			events := make(chan agentapi.Event, 64)
			go f.client.Events(t.Context(), func(e agentapi.Event) { events <- e })
			if e := nextEvent(t, events); e.Type != agentapi.EventStatus { // subscribed
				t.Fatalf("first event %+v", e)
			}
			if _, err := f.client.Restart(t.Context(), waitReady); err != nil {
				t.Fatal(err)
			}
			e := nextEvent(t, events)
			for e.Type != agentapi.EventStopped {
				e = nextEvent(t, events)
			}
			if e.ExitCode == nil || *e.ExitCode != c.code {
				t.Fatalf("stopped with %v, want %d; output:\n%s", e.ExitCode, c.code, f.out.String())
			}
			if got := strings.Contains(f.out.String(), "got terminated"); got != c.gotTerm {
				t.Fatalf("app got SIGTERM: %v, want %v", got, c.gotTerm)
			}
			f.sup.Shutdown(syscall.SIGKILL) // the new run drains too: no need to wait for it

		})
	}
}

// nextEvent is the next event, within a generous bound.
func nextEvent(t *testing.T, events <-chan agentapi.Event) agentapi.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(60 * time.Second):
		t.Fatal("no event")
	}
	return agentapi.Event{}
}
