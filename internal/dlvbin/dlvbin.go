// Package dlvbin builds Delve's dlv for the platform the app runs on, with the developer's own Go
// toolchain, at the version hotpod's go.mod pins (its `tool` line), and caches it: `hotpod dev
// --debug` ships it into the pod's emptyDir, so no image needs a debugger.
//
// The module files come from the source embedded in the CLI (hotpod.AgentSource), so the pin
// and every checksum are the ones hotpod was built with, however hotpod was installed.
package dlvbin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/hotpod/hotpod"
	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/gopkg"
)

// Package is what is built.
const Package = "github.com/go-delve/delve/cmd/dlv"

// Cache builds and keeps dlv binaries under Dir.
type Cache struct {
	Dir string
	Src fs.FS // holds go.mod and go.sum; hotpod.AgentSource when nil
}

// DefaultDir is $XDG_CACHE_HOME/hotpod/dlv (or its platform equivalent).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("dlv cache: %w (set XDG_CACHE_HOME)", err)
	}
	return filepath.Join(d, "hotpod", "dlv"), nil
}

var delveRE = regexp.MustCompile(`(?m)^\s*(?:require\s+)?github\.com/go-delve/delve\s+(v\S+)`)

// Version is the Delve version the module files pin.
func (c *Cache) Version() (string, error) {
	mod, _, err := c.modFiles()
	if err != nil {
		return "", err
	}
	m := delveRE.FindSubmatch(mod)
	if m == nil {
		return "", fmt.Errorf("hotpod's go.mod pins no github.com/go-delve/delve: this hotpod cannot debug")
	}
	return string(m[1]), nil
}

func (c *Cache) modFiles() (mod, sum []byte, err error) {
	src := c.Src
	if src == nil {
		src = hotpod.AgentSource
	}
	if mod, err = fs.ReadFile(src, "go.mod"); err != nil {
		return nil, nil, fmt.Errorf("dlv: %w", err)
	}
	if sum, err = fs.ReadFile(src, "go.sum"); err != nil {
		return nil, nil, fmt.Errorf("dlv: %w", err)
	}
	return mod, sum, nil
}

// Path returns dlv for p, building it first if the cache lacks it. The first build downloads
// Delve's module unless the module cache has it, and compiles it: tens of seconds.
func (c *Cache) Path(ctx context.Context, p agentbin.Platform) (string, error) {
	mod, sum, err := c.modFiles()
	if err != nil {
		return "", err
	}
	version, err := c.Version()
	if err != nil {
		return "", err
	}
	gover, err := gopkg.Env(ctx, "", "GOVERSION")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", p, gover, version)
	h.Write(sum) // the checksums of every module dlv is built from
	key := hex.EncodeToString(h.Sum(nil))[:16]
	out := filepath.Join(c.Dir, version+"-"+key, p.OS+"-"+p.Arch, "dlv")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	// Static (CGO_ENABLED=0: no ebpf tracing, which needs cgo; everything else works), stripped
	// (dlv needs no symbols of its own).
	if err := agentbin.BuildModule(ctx, map[string][]byte{"go.mod": mod, "go.sum": sum}, Package, p, out); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("build dlv %s for %s: %w (it needs Delve's module: the Go module proxy, or a module cache that has it)", version, p, err)
	}
	return out, nil
}
