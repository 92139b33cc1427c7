package agent

import "time"

// SetBodyStall shortens the stall bound of request bodies for a test, and returns the undo.
func SetBodyStall(d time.Duration) func() {
	old := bodyStall
	bodyStall = d
	return func() { bodyStall = old }
}
