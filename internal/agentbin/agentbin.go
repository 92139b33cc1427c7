// Package agentbin compiles the agent from the source embedded in the CLI, once per platform and
// source version, with the developer's own Go toolchain, and caches the result.
package agentbin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/hotpod/hotpod"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/gopkg"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Host is the platform hotpod itself runs on.
func Host() Platform { return Platform{runtime.GOOS, runtime.GOARCH} }

// Cache builds and keeps agents under Dir.
type Cache struct {
	Dir string
	Src fs.FS // the module source; hotpod.AgentSource when nil
}

// DefaultDir is $XDG_CACHE_HOME/hotpod/agent (or its platform equivalent).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("agent cache: %w (set XDG_CACHE_HOME)", err)
	}
	return filepath.Join(d, "hotpod", "agent"), nil
}

// Path returns the agent binary for p, building it first if the cache lacks it.
func (c *Cache) Path(ctx context.Context, p Platform) (string, error) {
	src := c.Src
	if src == nil {
		src = hotpod.AgentSource
	}
	files, err := sources(src)
	if err != nil {
		return "", err
	}
	gover, err := gopkg.Env(ctx, "", "GOVERSION")
	if err != nil {
		return "", err
	}
	key := digest(files, p, gover)
	out := filepath.Join(c.Dir, key[:16], p.OS+"-"+p.Arch, "hotpod-agent")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := BuildModule(ctx, files, hotpod.AgentPackage, p, out); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("build the agent for %s: %w", p, err)
	}
	return out, nil
}

// BuildModule builds package pkg, static and stripped, for p into out, from a module made of
// files (slash-separated paths: at least go.mod and go.sum), written to a temporary directory.
// out appears whole (written beside, then renamed) or not at all. A failed build's error ends
// with the go command's output.
func BuildModule(ctx context.Context, files map[string][]byte, pkg string, p Platform, out string) error {
	work, err := os.MkdirTemp("", "hotpod-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for name, b := range files {
		dst := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	tmp := out + ".tmp"
	cmd := build.Command(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := build.Run(cmd); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return os.Rename(tmp, out)
}

// sources reads the non-test Go files and the module files.
func sources(src fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(src, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(src, path)
		files[path] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agent source: %w", err)
	}
	return files, nil
}

func digest(files map[string][]byte, p Platform, gover string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", p, gover)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}
