//go:build !linux

package agent

import "syscall"

// BecomeSubreaper is Linux's alone; elsewhere orphans go to init as usual.
func BecomeSubreaper() bool { return false }

// appAttr: see the Linux one; elsewhere there is no parent-death signal.
func appAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
