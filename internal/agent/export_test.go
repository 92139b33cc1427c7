package agent

import "time"

// SetBodyStall shortens the stall bound of request bodies for a test, and returns the undo.
func SetBodyStall(d time.Duration) func() {
	old := bodyStall
	bodyStall = d
	return func() { bodyStall = old }
}

// WrapExchange replaces how the agent exchanges two files (the swap's fast path) by wrap of the
// real one for a test, and returns the undo.
func WrapExchange(wrap func(real func(a, b string) error) func(a, b string) error) func() {
	old := exchange
	exchange = wrap(exchangeFiles)
	return func() { exchange = old }
}
