//go:build !unix

package build

import "os/exec"

// ownGroup keeps exec's default cancellation (Kill) where there are no process groups.
func ownGroup(*exec.Cmd) {}

func reap(*exec.Cmd) {}
