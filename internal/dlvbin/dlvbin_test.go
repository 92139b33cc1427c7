package dlvbin_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/dlvbin"
)

// TestPath builds dlv for this machine with the pinned version and runs it; the second call is
// served from the cache.
func TestPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Delve")
	}
	c := &dlvbin.Cache{Dir: os.Getenv("HOTPOD_TEST_DLV_CACHE")}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	t0 := time.Now()
	p, err := c.Path(t.Context(), agentbin.Host())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %v", p, time.Since(t0))
	v, err := c.Version()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("dlv version: %v: %s", err, out)
	}
	if !strings.Contains(string(out), strings.TrimPrefix(v, "v")) {
		t.Errorf("dlv version says %q, want %s", out, v)
	}
	fi, _ := os.Stat(p)
	t1 := time.Now()
	p2, err := c.Path(t.Context(), agentbin.Host())
	if err != nil || p2 != p {
		t.Fatalf("second Path = %s, %v; want the cached %s", p2, err, p)
	}
	if fi2, _ := os.Stat(p2); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the cached dlv was rebuilt")
	}
	t.Logf("cached in %v", time.Since(t1))
}

func TestVersionNeedsPin(t *testing.T) {
	c := &dlvbin.Cache{Src: fstestMap("module x\n\ngo 1.24\n")}
	if _, err := c.Version(); err == nil || !strings.Contains(err.Error(), "pins no github.com/go-delve/delve") {
		t.Fatalf("Version without a pin: %v", err)
	}
}
