//go:build !linux

package agent

// BecomeSubreaper is Linux's alone; elsewhere orphans go to init as usual.
func BecomeSubreaper() bool { return false }
