package build_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/build"
)

func runBin(t *testing.T, p string) string {
	out, err := exec.Command(p).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v %s", p, err, out)
	}
	return strings.TrimSpace(string(out))
}

const rvMain = `package main

import (
	"fmt"
	"runtime"

	"example.com/rv/lib"
)

func main() { _, f, _, _ := runtime.Caller(0); fmt.Println(lib.Name(), %q, f, lib.Where()) }
`

const rvLib = `package lib

import "runtime"

func Name() string { s := "%s"; for i := 0; i < 3; i++ { s += "." }; if len(s) > 100 { panic(s) }; return s }

func Where() string { _, f, _, _ := runtime.Caller(0); return f }
`

// both builds and reports quick's and go build's binaries.
func both(t *testing.T, q *build.Quick, plain *build.Builder, outs string, i int) (string, string, build.Result) {
	qout, gout := filepath.Join(outs, fmt.Sprint("q", i)), filepath.Join(outs, fmt.Sprint("g", i))
	res, err := q.Build(t.Context(), qout)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Build(t.Context(), gout); err != nil {
		t.Fatal(err)
	}
	t.Logf("build %d: quick=%v why=%q\n  quick: %s\n  go:    %s", i, res.Quick, res.Why, runBin(t, qout), runBin(t, gout))
	return qout, gout, res
}

// A Go file that is a symlink: an edit of its target is an edit of the package (the go command
// follows the link), so Quick compiles it again.
func TestQuickFollowsSymlinkedFiles(t *testing.T) {
	salt := time.Now().UnixNano()
	root := t.TempDir()
	dir := filepath.Join(root, "m")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/rv\n\ngo 1.24\n")
	writeFile(t, filepath.Join(dir, "main.go"), fmt.Sprintf(rvMain, fmt.Sprint(salt)))
	target := filepath.Join(root, "shared", "lib.go")
	writeFile(t, target, fmt.Sprintf(rvLib, fmt.Sprint("one", salt)))
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "lib", "lib.go")); err != nil {
		t.Fatal(err)
	}
	q, plain := quickPair(t, dir, ".")
	outs := t.TempDir()
	both(t, q, plain, outs, 0)
	writeFile(t, filepath.Join(dir, "main.go"), fmt.Sprintf(rvMain, fmt.Sprint(salt+1)))
	both(t, q, plain, outs, 1)
	// edit the target (same-length literal: export data unchanged) and main
	writeFile(t, target, fmt.Sprintf(rvLib, fmt.Sprint("two", salt)))
	writeFile(t, filepath.Join(dir, "main.go"), fmt.Sprintf(rvMain, fmt.Sprint(salt+2)))
	qo, gq, res := both(t, q, plain, outs, 2)
	if runBin(t, qo) != runBin(t, gq) {
		t.Errorf("quick built another program than go build (quick=%v)", res.Quick)
	}
}

// A module reached through a symlink, hotpod's PWD the symlinked module root: Quick's tools
// get the working directory (PWD) go build gives them, so the paths they record, and
// -trimpath's rewriting of them, are go build's.
func TestQuickUnderASymlinkedDirectory(t *testing.T) {
	salt := time.Now().UnixNano()
	root := t.TempDir()
	real := filepath.Join(root, "real")
	writeFile(t, filepath.Join(real, "go.mod"), "module example.com/rv\n\ngo 1.24\n")
	writeFile(t, filepath.Join(real, "cmd", "app", "main.go"), fmt.Sprintf(rvMain, fmt.Sprint(salt)))
	writeFile(t, filepath.Join(real, "lib", "lib.go"), fmt.Sprintf(rvLib, fmt.Sprint("one", salt)))
	dir := filepath.Join(root, "link")
	if err := os.Symlink(real, dir); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("PWD", dir) // as a shell sets it after cd into the symlinked path
	q, plain := quickPair(t, dir, "./cmd/app")
	outs := t.TempDir()
	both(t, q, plain, outs, 0)
	writeFile(t, filepath.Join(real, "cmd", "app", "main.go"), fmt.Sprintf(rvMain, fmt.Sprint(salt+1)))
	qo, gq, res := both(t, q, plain, outs, 1)
	if !res.Quick {
		t.Fatalf("not quick: %s", res.Why)
	}
	if runBin(t, qo) != runBin(t, gq) {
		t.Errorf("quick built another program than go build")
	}
	sameBinary(t, "symlinked dir", qo, gq, false)
}

// A go.work created in a parent directory after the capture changes the build: Quick must
// see it.
func TestQuickSeesANewGoWork(t *testing.T) {
	salt := time.Now().UnixNano()
	root := t.TempDir()
	app := filepath.Join(root, "app")
	writeFile(t, filepath.Join(app, "go.mod"), "module example.com/rv\n\ngo 1.24\n\nrequire example.com/dep v0.0.0\n\nreplace example.com/dep => ../dep1\n")
	writeFile(t, filepath.Join(app, "main.go"), fmt.Sprintf(strings.Replace(rvMain, "\"example.com/rv/lib\"", "lib \"example.com/dep\"", 1), fmt.Sprint(salt)))
	for _, d := range []string{"dep1", "dep2"} {
		writeFile(t, filepath.Join(root, d, "go.mod"), "module example.com/dep\n\ngo 1.24\n")
		writeFile(t, filepath.Join(root, d, "lib.go"), strings.Replace(fmt.Sprintf(rvLib, d+fmt.Sprint(salt)), "package lib", "package dep", 1))
	}
	q, plain := quickPair(t, app, ".")
	outs := t.TempDir()
	both(t, q, plain, outs, 0)
	writeFile(t, filepath.Join(root, "go.work"), "go 1.24\n\nuse ./app\n\nreplace example.com/dep => ./dep2\n")
	writeFile(t, filepath.Join(app, "main.go"), fmt.Sprintf(strings.Replace(rvMain, "\"example.com/rv/lib\"", "lib \"example.com/dep\"", 1), fmt.Sprint(salt+1)))
	qo, gq, res := both(t, q, plain, outs, 1)
	if runBin(t, qo) != runBin(t, gq) {
		t.Errorf("quick built another program than go build (quick=%v)", res.Quick)
	}
}

// A go.mod made in a directory between a package and its module's root (not itself a package
// directory) takes the package out of the module: go build fails, and so must Quick.
func TestQuickSeesANewNestedModule(t *testing.T) {
	salt := time.Now().UnixNano()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/rv\n\ngo 1.24\n")
	writeFile(t, filepath.Join(dir, "main.go"), fmt.Sprintf(strings.Replace(rvMain, "example.com/rv/lib", "example.com/rv/pkg/deep/lib", 1), fmt.Sprint(salt)))
	writeFile(t, filepath.Join(dir, "pkg", "deep", "lib", "lib.go"), fmt.Sprintf(rvLib, fmt.Sprint("one", salt)))
	q, plain := quickPair(t, dir, ".")
	outs := t.TempDir()
	if _, err := q.Build(t.Context(), filepath.Join(outs, "q0")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pkg", "go.mod"), "module example.com/other\n\ngo 1.24\n")
	writeFile(t, filepath.Join(dir, "main.go"), fmt.Sprintf(strings.Replace(rvMain, "example.com/rv/lib", "example.com/rv/pkg/deep/lib", 1), fmt.Sprint(salt+1)))
	if _, err := plain.Build(t.Context(), filepath.Join(outs, "g1")); err == nil {
		t.Fatal("go build succeeded with the library in another module: the test's premise is wrong")
	}
	if res, err := q.Build(t.Context(), filepath.Join(outs, "q1")); err == nil {
		t.Errorf("Quick built (quick=%v, %s) what go build refuses: the library is in another module now", res.Quick, res.Why)
	}
}
