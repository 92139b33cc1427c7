package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/cli"
)

// The first Ctrl-C cancels the command's context (cause ErrInterrupted) and lets it clean up;
// the second exits at once with 130, printing what the cleanup had not removed yet.
func TestInterruptTwiceForcesTheExit(t *testing.T) {
	var in cli.Interrupt
	sigs := make(chan os.Signal, 2)
	var w bytes.Buffer
	exited := make(chan int, 1)
	ctx, stop := in.Watch(t.Context(), sigs, &w, func(code int) { exited <- code })
	defer stop()

	cleaned := in.Leave("work directory /tmp/hotpod-x")
	in.Leave("3 objects applied to namespace dev (kubectl delete -f k8s/ -n dev)")
	gone := in.Leave("a port-forward")
	gone()

	sigs <- syscall.SIGINT
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the first signal did not cancel the context")
	}
	if !errors.Is(context.Cause(ctx), cli.ErrInterrupted) {
		t.Fatalf("cause %v, want ErrInterrupted", context.Cause(ctx))
	}
	select {
	case code := <-exited:
		t.Fatalf("the first signal exited (%d)", code)
	default:
	}
	cleaned()
	sigs <- syscall.SIGINT
	select {
	case code := <-exited:
		if code != cli.ExitInterrupted {
			t.Errorf("exit code %d, want %d", code, cli.ExitInterrupted)
		}
	case <-time.After(time.Minute):
		t.Fatal("the second signal did not exit")
	}
	got := w.String()
	if !strings.Contains(got, "3 objects applied to namespace dev") || strings.Contains(got, "/tmp/hotpod-x") || strings.Contains(got, "port-forward") {
		t.Errorf("forced exit printed %q; want only what was still left", got)
	}
}

// stop ends the watch: a signal after it neither cancels nor exits. A nil Interrupt registers
// nothing.
func TestInterruptStop(t *testing.T) {
	var in cli.Interrupt
	sigs := make(chan os.Signal, 2)
	ctx, stop := in.Watch(context.Background(), sigs, &bytes.Buffer{}, func(int) { t.Error("exited after stop") })
	stop()
	sigs <- syscall.SIGINT
	sigs <- syscall.SIGINT
	time.Sleep(50 * time.Millisecond)
	if errors.Is(context.Cause(ctx), cli.ErrInterrupted) {
		t.Error("a signal after stop interrupted")
	}
	var none *cli.Interrupt
	none.Leave("x")()
	if none.Left() != nil {
		t.Error("a nil Interrupt registered something")
	}
}
