//go:build !linux

package agent

import "errors"

// exchangeFiles: see the Linux one; elsewhere the agent renames.
func exchangeFiles(a, b string) error { return errors.ErrUnsupported }
