package agent

import "syscall"

// BecomeSubreaper makes the orphans of the app's processes children of the agent (as they are
// of PID 1), so that it can reap them and tell when a stopped app's whole group is gone.
func BecomeSubreaper() bool {
	const prSetChildSubreaper = 36
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	return errno == 0
}

// appAttr is how the app (and an exec probe) is started: in a process group of its own, so
// that a stop reaches its children (a wrapper's app, its workers), and killed when the agent
// dies (SIGKILL, OOM): in a container the agent's end is the container's anyway, but where the
// agent is not PID 1 (a wrapper command before it, a shared process namespace, hotpod's own
// tests) the app would otherwise run on with nobody to stop it.
func appAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
