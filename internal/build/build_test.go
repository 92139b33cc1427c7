package build_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/build"
)

func module(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":  "module example.com/app\n\ngo 1.24\n",
		"main.go": "package main\n\nfunc main() { println(\"hi\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// --post-build runs on the built binary (a packer, a signer), and its failure is a build error
// that names it.
func TestPostBuild(t *testing.T) {
	dir := module(t)
	out := filepath.Join(t.TempDir(), "app")
	b := &build.Builder{Dir: dir, Package: ".", Options: build.Options{
		PostBuild: []string{"sh", "-c", `printf POSTBUILT >> "$1"`, "sh"}}}
	if _, err := b.Build(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(bin, []byte("POSTBUILT")) {
		t.Error("the post-build command did not run on the binary")
	}

	b.Options.PostBuild = []string{"sh", "-c", "echo no packer here >&2; exit 3"}
	_, err = b.Build(t.Context(), out)
	var be *build.Error
	if !errors.As(err, &be) || !strings.Contains(be.Output, "--post-build sh -c") || !strings.Contains(be.Output, "no packer here") {
		t.Fatalf("failing post-build: %v", err)
	}
}
