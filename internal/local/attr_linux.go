package local

import "syscall"

// agentAttr starts the agent in its own process group: Ctrl-C reaches hotpod, which then stops
// the agent in order. Should hotpod die without that chance (SIGKILL), the kernel sends the
// agent SIGTERM: nothing is left running.
func agentAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
