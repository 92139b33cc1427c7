package initproject_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/initproject"
	"github.com/hotpod/hotpod/internal/testutil"
)

// TestDetect runs hotpod init on each fixture project: the proposed hotpod.yaml and the report
// are golden files, and the file it writes (into a copy of the project) loads with the config
// package, so what init writes is a valid project file.
func TestDetect(t *testing.T) {
	tests := []struct {
		project string
		want    []string // what each service's image must be (the heart of each fixture)
	}{
		{"ko-files", []string{"ko://example.com/hello/cmd/hello"}},
		{"kustomize", []string{"ko://example.com/shop/cmd/api"}},
		{"helm", []string{"ko://example.com/shop/cmd/api"}},
		{"dockerfile", []string{"registry.example.com/shop/legacy"}},
		{"skaffold", []string{"ko://example.com/sk/cmd/app", "registry.example.com/sk/worker"}},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.project, func(t *testing.T) {
			src := filepath.Join("testdata", tt.project)
			p, findings, err := initproject.Detect(src)
			if err != nil {
				t.Fatal(err)
			}
			var images []string
			for _, s := range p.Services {
				images = append(images, s.Image)
			}
			if strings.Join(images, " ") != strings.Join(tt.want, " ") {
				t.Errorf("service images %q, want %q", images, tt.want)
			}
			var report strings.Builder
			for _, f := range findings {
				report.WriteString(f.String() + "\n")
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", tt.project+".yaml"), p.YAML())
			testutil.Golden(t, filepath.Join("testdata", "golden", tt.project+".txt"), []byte(report.String()))

			dir := copyDir(t, src)
			written, err := initproject.Write(dir, p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(written)
			if err != nil {
				t.Fatalf("the written hotpod.yaml does not load: %v\n%s", err, p.YAML())
			}
			if len(c.Services) != len(p.Services) {
				t.Errorf("loaded %d services, wrote %d", len(c.Services), len(p.Services))
			}
		})
	}
}

// TestDockerfileService checks the heart of the Dockerfile fixture field by field: main from
// the build stage's go build, binary from the final stage's COPY --from into a directory.
func TestDockerfileService(t *testing.T) {
	p, _, err := initproject.Detect("testdata/dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Services) != 1 {
		t.Fatalf("services %+v, want the legacy service only (tools/Dockerfile.migrate builds no main package)", p.Services)
	}
	s := p.Services[0]
	if s.Main != "./cmd/legacy" || s.Binary != "/usr/local/bin/legacy" || s.Image != "registry.example.com/shop/legacy" {
		t.Errorf("service %+v", s)
	}
	if len(p.Manifests.Files) != 1 || p.Manifests.Files[0] != "k8s" {
		t.Errorf("manifests %+v, want files [k8s]", p.Manifests)
	}
}

func TestWriteNeverOverwrites(t *testing.T) {
	dir := copyDir(t, "testdata/existing")
	before, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := initproject.Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = initproject.Write(dir, p)
	if !errors.Is(err, initproject.ErrExists) || !strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("Write over an existing file: %v, want ErrExists that says so", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil || string(after) != string(before) {
		t.Errorf("the existing file changed: %q, %v", after, err)
	}
}

func TestDockerfileForms(t *testing.T) {
	tests := []struct {
		name, dockerfile, main, binary string
	}{
		{"single stage, -o absolute", "FROM golang\nWORKDIR /src\nCOPY . .\nRUN go build -o /app ./cmd/x\nCMD [\"/app\"]\n", "./cmd/x", "/app"},
		{"-o relative to WORKDIR, COPY by stage index", "FROM golang\nWORKDIR /src\nRUN go build -o bin/x ./cmd/x\nFROM scratch\nCOPY --from=0 /src/bin/x /x\n", "./cmd/x", "/x"},
		{"-o=dir/ and a copied directory", "FROM golang AS b\nWORKDIR /w\nRUN go build -o=/out/ ./cmd/x\nFROM alpine\nWORKDIR /opt\nCOPY --from=b /out ./bin\n", "./cmd/x", "/opt/bin/x"},
		{"import path of the module, no -o", "FROM golang AS b\nWORKDIR /go/src\nRUN CGO_ENABLED=0 go build -ldflags '-s -w' example.com/m/cmd/x\nFROM scratch\nCOPY --from=b /go/src/x /usr/bin/x\n", "./cmd/x", "/usr/bin/x"},
		{"binary from ENTRYPOINT when COPY does not say", "FROM golang AS b\nWORKDIR /w\nRUN go build -o /tmp/x ./cmd/x\nFROM scratch\nCOPY --from=b /tmp /srv\nENTRYPOINT [\"/srv/x\"]\n", "./cmd/x", "/srv/x"},
		{"build in a shell chain", "FROM golang AS b\nRUN cd / && go mod download && go build -o /x ./cmd/x; echo done\nFROM scratch\nCOPY --from=b --chown=1:1 [\"/x\", \"/bin/x\"]\n", "./cmd/x", "/bin/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, s := range map[string]string{"go.mod": "module example.com/m\n", "cmd/x/main.go": "package main\n\nfunc main() {}\n", "Dockerfile": tt.dockerfile} {
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, findings, err := initproject.Detect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Services) != 1 || p.Services[0].Main != tt.main || p.Services[0].Binary != tt.binary {
				t.Fatalf("services %+v, want main %s binary %s; findings %v", p.Services, tt.main, tt.binary, findings)
			}
		})
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
