package initproject

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDockerfile feeds arbitrary Dockerfiles to the parser hotpod init runs on a project's
// files: it must never panic, and every go build it reports names a package.
func FuzzDockerfile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/Dockerfile*")
	more, _ := filepath.Glob("testdata/*/*/Dockerfile*")
	for _, p := range append(files, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, src string) {
		stages := parseDockerfile(src)
		for si, st := range stages {
			for _, gb := range st.builds {
				if gb.pkg == "" || gb.out == "" {
					t.Fatalf("go build without package or output: %+v", gb)
				}
				copiedTo(stages[len(stages)-1], stages, si, gb.out)
			}
		}
		if len(stages) > 0 {
			entrypointBinary(stages[len(stages)-1])
		}
	})
}
