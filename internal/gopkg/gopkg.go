// Package gopkg asks the go command about the main package hotpod builds: its name, its module,
// and the files a change to which must trigger a rebuild.
package gopkg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Main describes a main package and what its build depends on inside its module.
type Main struct {
	ImportPath string
	Name       string // the service name: the last element of the import path
	Dir        string
	ModuleDir  string // holds go.mod and go.sum
	// Dirs are the directories of the module-local packages the main package depends on.
	Dirs []string
	// EmbedFiles are the files those packages embed.
	EmbedFiles []string
}

type listed struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	EmbedFiles []string
	Module     *struct {
		Path  string
		Dir   string
		Main  bool
		GoMod string
	}
	Error      *struct{ Err string }
	DepsErrors []struct{ Err string }
}

// Load resolves pkg (a path or import path, "." by default) in dir. env holds extra environment
// for the go command (GOOS, GOARCH, GOFLAGS...), so build tags select the same files as the build.
func Load(ctx context.Context, dir, pkg string, env []string) (*Main, error) {
	if pkg == "" {
		pkg = "."
	}
	pkgs, err := list(ctx, dir, env, "-deps", pkg)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("package %s: go list found nothing", pkg)
	}
	root := pkgs[len(pkgs)-1] // -deps lists dependencies first, the named package last
	if root.Error != nil {
		if advice, ok := ModuleAdvice(root.Error.Err, dir); ok {
			return nil, fmt.Errorf("package %s: %s", pkg, advice)
		}
		return nil, fmt.Errorf("package %s: %s", pkg, strings.TrimSpace(root.Error.Err))
	}
	if len(root.DepsErrors) > 0 {
		return nil, fmt.Errorf("package %s: %s", pkg, strings.TrimSpace(root.DepsErrors[0].Err))
	}
	if root.Name != "main" {
		return nil, fmt.Errorf("package %s (%s) is package %s, not a main package: name the directory of a command (package main)", pkg, root.ImportPath, root.Name)
	}
	if root.Module == nil {
		return nil, fmt.Errorf("package %s is not in a Go module: run hotpod inside a module (go mod init)", pkg)
	}
	m := &Main{ImportPath: root.ImportPath, Name: filepath.Base(root.ImportPath), Dir: root.Dir, ModuleDir: root.Module.Dir}
	if m.Name == "." || m.Name == "/" || strings.HasSuffix(root.ImportPath, "command-line-arguments") {
		m.Name = filepath.Base(root.Dir)
	}
	for _, p := range pkgs {
		if p.Standard || p.Module == nil || p.Module.Path != root.Module.Path {
			continue
		}
		m.Dirs = append(m.Dirs, p.Dir)
		m.EmbedFiles = append(m.EmbedFiles, absAll(p.Dir, p.EmbedFiles)...)
	}
	slices.Sort(m.Dirs)
	m.Dirs = slices.Compact(m.Dirs)
	return m, nil
}

func absAll(dir string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = filepath.Join(dir, f)
	}
	return out
}

func list(ctx context.Context, dir string, env []string, args ...string) ([]listed, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-e", "-json=ImportPath,Name,Dir,Standard,EmbedFiles,Module,Error,DepsErrors"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if advice, ok := ModuleAdvice(stderr.String(), dir); ok {
				return nil, errors.New(advice)
			}
			return nil, fmt.Errorf("go list %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("go list: %w (is the Go toolchain on PATH?)", err)
	}
	var out []listed
	dec := json.NewDecoder(&stdout)
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Env is the go command's value of the variable name (GOROOT, GOVERSION...) in dir.
func Env(ctx context.Context, dir, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", name)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w (is the Go toolchain on PATH?)", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// ModuleRoot is the directory of the go.mod governing dir, or dir itself outside a module.
func ModuleRoot(ctx context.Context, dir string) (string, error) {
	gomod, err := Env(ctx, dir, "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return dir, nil
	}
	return filepath.Dir(gomod), nil
}

// ModuleAdvice rewrites what the go command says when it runs outside the module that holds the
// package (no go.mod in dir or above it; a package no required module provides; a directory
// outside the main module): its advice (go get, go help modules) would send the user the wrong
// way, since the fix is to run hotpod where the package's go.mod is. ok is false for any other
// message.
func ModuleAdvice(goOutput, dir string) (advice string, ok bool) {
	const fix = "run hotpod in your module's directory"
	switch {
	case strings.Contains(goOutput, "go.mod file not found"):
		return fmt.Sprintf("no go.mod in %s or any directory above it: %s", dir, fix), true
	case strings.Contains(goOutput, "no required module provides package"):
		// Only for the package hotpod was asked to build: for one it imports, go get is the fix.
		return fmt.Sprintf("the module in %s does not provide it: %s (the one whose go.mod provides it)", dir, fix), true
	case strings.Contains(goOutput, "outside main module"):
		first, _, _ := strings.Cut(strings.TrimSpace(goOutput), "\n")
		return fmt.Sprintf("%s (the module in %s): %s, or name a package inside it", first, dir, fix), true
	}
	return "", false
}

// KoData returns the kodata/ directory beside the main package's sources (ko ships its files
// at $KO_DATA_PATH), or "" when there is none.
func (m *Main) KoData() (string, error) {
	d := filepath.Join(m.Dir, "kodata")
	fi, err := os.Stat(d)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	case !fi.IsDir():
		return "", nil
	}
	return d, nil
}

// Shape is a fingerprint of what in a Go source file decides which files and packages a build
// reads: its package clause, build constraints, imports and //go:embed patterns. An edit that
// keeps a file's shape (a function body, a string) cannot change what to watch, so the go list
// that recomputes it (0.8 CPU-seconds for a 400-package service, competing with the edit's own
// ship and restart) need not run. ok is false when the file cannot be read or parsed: then
// nothing can be assumed. directives are more line prefixes the shape keeps (build.Quick adds
// //go:debug, which sets the link's GODEBUG defaults).
func Shape(path string, directives ...string) (shape string, ok bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	b.WriteString(f.Name.Name)
	for _, imp := range f.Imports {
		b.WriteString("\x00")
		if imp.Name != nil {
			b.WriteString(imp.Name.Name + " ")
		}
		b.WriteString(imp.Path.Value)
	}
	// Directives anywhere in the file (ImportsOnly stops parsing after the imports; //go:embed
	// sits on declarations below them): every line that starts with //go:build, // +build,
	// //go:embed or one of directives.
	prefixes := append([]string{"//go:build", "// +build", "//go:embed"}, directives...)
	for line := range bytes.Lines(src) {
		line = bytes.TrimSpace(line)
		if slices.ContainsFunc(prefixes, func(p string) bool { return bytes.HasPrefix(line, []byte(p)) }) {
			b.WriteString("\x00")
			b.Write(line)
		}
	}
	return b.String(), true
}
