// Package greet is shared by every service of the project: an edit here rebuilds each.
package greet

// Mark is set by a service's ldflags in hotpod.yaml (-X), to show they were applied.
var Mark = "none"

// Suffix ends every answer.
func Suffix() string { return "shared v1 mark " + Mark }
