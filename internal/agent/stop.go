package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopPolicy says how a restart stops the running app. Whatever the policy, the whole process
// group is killed in the end and the restart waits until none of it runs: a child of the old
// app must not keep its port from the new one. The agent's own shutdown (the container stops)
// always gives the app its full grace period.
type StopPolicy string

const (
	// StopGraceful sends the stop signal to the process group and waits up to the grace period
	// (--grace) before SIGKILL: what Kubernetes does.
	StopGraceful StopPolicy = "graceful"
	// StopFast sends the stop signal and waits at most FastGrace (or the grace period when that
	// is shorter): an app that exits promptly on SIGTERM still runs its shutdown code, one that
	// drains for seconds (load balancers do not matter in dev) is killed. The default.
	StopFast StopPolicy = "fast"
	// StopKill sends SIGKILL to the process group at once.
	StopKill StopPolicy = "kill"
)

// FastGrace is how long StopFast lets the app stop on its own.
const FastGrace = 100 * time.Millisecond

// ParseStopPolicy reads a --stop-policy value.
func ParseStopPolicy(s string) (StopPolicy, error) {
	switch p := StopPolicy(s); p {
	case StopGraceful, StopFast, StopKill:
		return p, nil
	}
	return "", fmt.Errorf("stop policy %q: want %s (SIGTERM, then SIGKILL after %v), %s (then SIGKILL after --grace) or %s (SIGKILL at once)",
		s, StopFast, FastGrace, StopGraceful, StopKill)
}

// stopForRestart stops p as the configured policy says.
func (s *Supervisor) stopForRestart(p *process) {
	grace := s.cfg.Grace
	if s.cfg.StopPolicy == StopFast {
		grace = min(grace, FastGrace)
	}
	s.stop(p, s.cfg.StopPolicy, s.cfg.StopSignal, grace)
}

// stop asks p's process group to exit with sig (none under StopKill), kills the group after
// grace, and returns once p has been reaped and nothing of its group runs any more.
func (s *Supervisor) stop(p *process, policy StopPolicy, sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	p.stopped = true
	s.mu.Unlock()
	if p.pid <= 0 {
		return // it never started
	}
	select {
	case <-p.exited:
	default:
		if policy != StopKill && grace > 0 {
			_ = syscall.Kill(-p.pid, sig)
			select {
			case <-p.exited:
			case <-time.After(grace):
			}
		}
	}
	// Whatever is left of the group (the app itself after the grace, or children that outlived
	// it) goes now. A child with a group of its own goes first, while it is still the
	// process's child: the app under tini (which puts its child into a new group) or under the
	// debugger (dlv's tracee, which outlives a killed dlv). Killed after its parent, it would be
	// an orphan that keeps its port from the new app.
	children := childrenOf(p.pid)
	for _, c := range children {
		_ = syscall.Kill(-c, syscall.SIGKILL)
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
	for _, pgid := range append(children, p.pid) {
		waitGroupGone(pgid, 5*time.Second)
	}
}

// waitGroupGone waits until no live process is in the process group pgid: a killed process
// frees its ports as it dies, but it may take a moment after SIGKILL. Zombies (dead, waiting for
// a parent that is not the agent) do not count.
func waitGroupGone(pgid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for syscall.Kill(-pgid, 0) == nil && liveInGroup(pgid) && time.Now().Before(deadline) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(time.Millisecond)
	}
}

// liveInGroup reports whether a process of group pgid is alive (not a zombie), from /proc.
// Without /proc it assumes none.
func liveInGroup(pgid int) bool {
	want, live := strconv.Itoa(pgid), false
	procStats(func(_ int, f []string) bool {
		// f: state ppid pgrp ...
		live = len(f) > 2 && f[2] == want && f[0] != "Z" && f[0] != "X"
		return !live
	})
	return live
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	want := strconv.Itoa(pid)
	var out []int
	procStats(func(n int, f []string) bool {
		if len(f) > 1 && f[1] == want {
			out = append(out, n)
		}
		return true
	})
	return out
}

// procStats calls fn with each process's pid and the fields of its /proc/PID/stat after the
// command name (state, ppid, pgrp, ...), until fn returns false. Without /proc it calls none.
func procStats(fn func(pid int, fields []string) bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		if !fn(n, strings.Fields(string(b[i+1:]))) {
			return
		}
	}
}
