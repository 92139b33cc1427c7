package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/debugport"
	"github.com/hotpod/hotpod/internal/dlvbin"
	"github.com/hotpod/hotpod/internal/report"
)

// debugGCFlags turn off optimisation and inlining, for the debugger.
const debugGCFlags = "all=-N -l"

// debugBuild turns the build flags into --debug's (BuildFlags.For applies them over hotpod.yaml's
// too): no optimisation or inlining (-gcflags=all=-N -l), DWARF kept (no -s -w), and no
// -trimpath, so the binary names its sources where they are on this machine and an IDE's
// breakpoints (absolute paths) match without a path mapping. A --gcflags, or an --ldflags that
// drops DWARF, given with --debug is refused.
func debugBuild(cmd *cobra.Command, f *BuildFlags) error {
	if cmd.Flags().Changed("gcflags") {
		return fmt.Errorf("--debug builds with -gcflags=%s (no optimisation, no inlining, for the debugger): drop --gcflags", debugGCFlags)
	}
	if cmd.Flags().Changed("ldflags") {
		if fs := strings.Fields(f.LDFlags); slices.Contains(fs, "-s") || slices.Contains(fs, "-w") {
			return fmt.Errorf("--debug needs the DWARF that -s and -w drop: remove them from --ldflags %q", f.LDFlags)
		}
	}
	if !cmd.Flags().Changed("ldflags") {
		f.LDFlags = "" // the default, -s -w
	}
	f.debug = true
	return nil
}

// debugDelve starts building dlv for the nodes' platform at once, beside the first build of
// the app, and returns what waits for it.
func debugDelve(ctx context.Context, rep *report.Reporter, p v1.Platform) debugport.Delve {
	dir, err := dlvbin.DefaultDir()
	if err != nil {
		return func(context.Context) ([]byte, error) { return nil, err }
	}
	c := &dlvbin.Cache{Dir: dir}
	version, _ := c.Version()
	done := make(chan struct{})
	var (
		bin  []byte
		berr error
	)
	go func() {
		defer close(done)
		t0 := time.Now()
		path, err := c.Path(ctx, agentbin.Platform{OS: p.OS, Arch: p.Architecture})
		if err != nil {
			berr = err
			return
		}
		if d := time.Since(t0); d > time.Second {
			rep.Infof("", "built dlv %s for %s/%s in %.1fs (cached from now on)", version, p.OS, p.Architecture, d.Seconds())
		}
		bin, berr = os.ReadFile(path)
	}()
	var once sync.Once
	return func(ctx context.Context) ([]byte, error) {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		once.Do(func() {
			if berr != nil {
				berr = fmt.Errorf("dlv for %s/%s: %w", p.OS, p.Architecture, berr)
			}
		})
		return bin, berr
	}
}
