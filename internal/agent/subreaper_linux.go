package agent

import "syscall"

// BecomeSubreaper makes the orphans of the app's processes children of the agent (as they are
// of PID 1), so that it can reap them and tell when a stopped app's whole group is gone.
func BecomeSubreaper() bool {
	const prSetChildSubreaper = 36
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	return errno == 0
}
