//go:build unix

package build

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup puts cmd in a process group of its own, which cancellation interrupts as a whole.
// A terminal's Ctrl-C then reaches hotpod alone, and hotpod passes it on: one path whether the
// signal came from the terminal or from kill(1).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return err
	}
}

// reap kills what is left of the process group of cmd, which has exited, when cmd had to be
// killed after WaitDelay: the children it could not wait for. (A group whose leader exited on its
// own is empty: it is left alone, its id may already be another's.)
func reap(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		return
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
