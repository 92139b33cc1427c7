package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrInterrupted is the cause of a command's context once the user pressed Ctrl-C (or sent
// SIGTERM): the command cleans up and ends, and Main reports "interrupted" with exit code 130.
var ErrInterrupted = errors.New("interrupted")

// ExitInterrupted is the exit code of an interrupted command, as a shell reports a process
// ended by SIGINT.
const ExitInterrupted = 130

// Interrupt is hotpod's Ctrl-C: the first signal cancels the command's context so that it
// cleans up (deletes what it applied, stops the agent, removes its work directories); a second
// one, for a user who will not wait, exits at once and prints what that cleanup had not yet
// removed, as commands registered it with Leave. The zero value is ready; a nil *Interrupt
// registers nothing.
type Interrupt struct {
	mu   sync.Mutex
	next int
	left map[int]string
}

// Leave registers what a forced exit would leave behind, said so the user can remove it (e.g.
// "work directory /tmp/x"), and returns the function that unregisters it once it is cleaned up.
func (in *Interrupt) Leave(what string) (cleaned func()) {
	if in == nil {
		return func() {}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.left == nil {
		in.left = map[int]string{}
	}
	id := in.next
	in.next++
	in.left[id] = what
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		delete(in.left, id)
	}
}

// Left lists what is registered, oldest first.
func (in *Interrupt) Left() []string {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []string
	for id := range in.next {
		if s, ok := in.left[id]; ok {
			out = append(out, s)
		}
	}
	return out
}

// Watch returns a context that the first signal on sigs cancels with cause ErrInterrupted. A
// second signal writes what is registered to w and calls exit(ExitInterrupted) (os.Exit when
// exit is nil). stop ends the watch.
func (in *Interrupt) Watch(parent context.Context, sigs <-chan os.Signal, w io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	if exit == nil {
		exit = os.Exit
	}
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	// next waits for a signal; false once stopped, which wins over a signal pending with it.
	next := func() bool {
		select {
		case <-sigs:
		case <-done:
			return false
		}
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	go func() {
		if !next() {
			return
		}
		cancel(ErrInterrupted)
		if !next() {
			return
		}
		in.force(w)
		exit(ExitInterrupted)
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() { close(done) })
		cancel(nil)
	}
}

func (in *Interrupt) force(w io.Writer) {
	left := in.Left()
	if len(left) == 0 {
		fmt.Fprintln(w, "hotpod: interrupted again: exiting without waiting for the cleanup")
		return
	}
	fmt.Fprintln(w, "hotpod: interrupted again: exiting without waiting for the cleanup, which leaves behind:")
	for _, s := range left {
		fmt.Fprintln(w, "  "+s)
	}
}

// interrupted reports whether ctx ended because the user interrupted the command.
func interrupted(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrInterrupted)
}
