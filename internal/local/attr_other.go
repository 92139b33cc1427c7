//go:build unix && !linux

package local

import "syscall"

// agentAttr: see the Linux one. Only Linux has a parent-death signal: elsewhere (macOS) an
// agent whose hotpod was killed with SIGKILL keeps running its app until it is stopped.
func agentAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
