package delta_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// versions are real Go binaries of testdata/app.go.txt: the base, after a one-line edit, and after
// a bigger edit (a new function, new standard-library imports, a changed string).
type versions struct{ base, oneLine, bigger []byte }

func buildVersions(tb testing.TB, ldflags string) versions {
	tb.Helper()
	src, err := os.ReadFile("testdata/app.go.txt")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/app\n\ngo 1.24\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	build := func(code string) []byte {
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
			tb.Fatal(err)
		}
		out := filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go build: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	s := string(src)
	oneLine := strings.Replace(s, "hello from the delta test", "hello from the edited delta test", 1)
	bigger := strings.Replace(oneLine, "//IMPORTS", "\"crypto/sha256\"\n\t\"strings\"\n\t\"text/template\"", 1)
	bigger = strings.Replace(bigger, "//EXTRA", `fmt.Println(extra(host))`, 1) + `
func extra(s string) string {
	t := template.Must(template.New("x").Parse("{{.}} {{len .}}"))
	var b strings.Builder
	_ = t.Execute(&b, s)
	return fmt.Sprintf("%x %s", sha256.Sum256([]byte(s)), strings.ToUpper(b.String()))
}
`
	return versions{base: build(s), oneLine: build(oneLine), bigger: build(bigger)}
}
