package devloop

import (
	"context"
	"time"
)

// SetRetry shortens the waits before a target that did not answer is asked again.
func SetRetry(l *Loop, first, most time.Duration) { l.retry, l.maxRetry = first, most }

// Queued is the iteration of the build waiting in t's queue (0: none).
func Queued(t *Target) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next == nil {
		return 0
	}
	return t.next.build.it
}

// JoinAndWait is Join, returning once the target's catch-up was handled.
func JoinAndWait(ctx context.Context, l *Loop, t *Target) { <-l.join(ctx, t).done }

// Reshaped is the loop's rule for whether an edit of paths may change what to watch.
func Reshaped(l *Loop, paths []string) bool { return l.reshaped(paths) }
