package appimage_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/image"
)

// agents is one agent cache for the package's tests: the agent is compiled for real, once.
var agents *agentbin.Cache

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "appimage-agents-")
	if err != nil {
		log.Fatal(err)
	}
	agents = &agentbin.Cache{Dir: dir}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

// startRegistry serves go-containerregistry's registry on loopback (plain HTTP, as hotpod allows
// for loopback registries) and returns its host:port.
func startRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// module writes a Go module with the main packages of the tests and returns its directory.
func module(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":                  "module example.com/shop\n\ngo 1.24\n",
		"cmd/legacy/main.go":      "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"built-by-hotpod legacy\") }\n",
		"cmd/kapp/main.go":        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"built-by-hotpod kapp\") }\n",
		"cmd/kapp/kodata/a.html":  "<h1>shop</h1>\n",
		"cmd/kapp/kodata/css/b.c": "body{}\n",
		"shared/terms.txt":        "terms\n",
		"cmd/escape/main.go":      "package main\n\nfunc main() {}\n",
	}
	for p, s := range files {
		write(t, filepath.Join(dir, p), s)
	}
	// A symlink inside the module is followed; one that leaves it is refused.
	if err := os.Symlink("../../../shared/terms.txt", filepath.Join(dir, "cmd/kapp/kodata/terms.txt")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	write(t, outside, "do not ship\n")
	write(t, filepath.Join(dir, "cmd/escape/kodata/ok.txt"), "ok\n")
	if err := os.Symlink(outside, filepath.Join(dir, "cmd/escape/kodata/secret")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entry is one file of a layer as the tests write it; Link makes a symlink, Whiteout deletes.
type entry struct {
	Path     string
	Mode     int64
	UID, GID int
	Data     string
	Link     string
	Dir      bool
}

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Path, Mode: e.Mode, Uid: e.UID, Gid: e.GID, ModTime: time.Unix(0, 0)}
		switch {
		case e.Dir:
			h.Typeflag = tar.TypeDir
		case e.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// legacyImage is an image "built elsewhere": no shell, CA certificates, static files, a non-root
// user, a working directory, its own environment, and the app at /usr/local/bin/legacy.
func legacyImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		layer(t,
			entry{Path: "etc/", Dir: true, Mode: 0o755},
			entry{Path: "etc/ssl/certs/", Dir: true, Mode: 0o755},
			entry{Path: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: "CERTIFICATES"},
			entry{Path: "app/", Dir: true, Mode: 0o700, UID: 1000, GID: 1000},
			entry{Path: "app/state", Mode: 0o600, UID: 1000, GID: 1000, Data: "state"},
			entry{Path: "srv/static/", Dir: true, Mode: 0o755},
			entry{Path: "srv/static/index.html", Mode: 0o644, Data: "<h1>legacy</h1>"},
			entry{Path: "usr/local/bin/", Dir: true, Mode: 0o755},
			entry{Path: "usr/local/bin/old-tool", Mode: 0o755, Data: "old tool"},
		),
		layer(t,
			entry{Path: "usr/local/bin/legacy", Mode: 0o750, UID: 1000, GID: 1000, Data: "the binary CI built"},
			entry{Path: "usr/bin/legacy-link", Link: "../local/bin/legacy"},
		),
		layer(t, entry{Path: "usr/local/bin/.wh.old-tool"}), // the Dockerfile removed it
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Config = v1.Config{
		User: "1000:1000", WorkingDir: "/srv",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=prod"},
		Entrypoint: []string{"/usr/local/bin/legacy"}, Cmd: []string{"--port=8080"},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fsOf flattens an image's layers into its file system: path → header and contents.
type file struct {
	hdr  *tar.Header
	data string
}

func fsOf(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]file{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "/"), "/")] = file{h, string(b)}
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func builder(t *testing.T, dir, reg string) *appimage.Builder {
	return &appimage.Builder{Dir: dir, Base: "scratch", Repo: reg + "/dev", Agents: agents,
		Options: build.Options{LDFlags: "-s -w"}, Platform: platform, WorkDir: t.TempDir()}
}

// TestBuiltElsewhere builds on an image pushed to a real registry: the app is replaced at its
// path, the agent is added, and every other file, the user, the working directory, the
// environment and the entrypoint are the image's own.
func TestBuiltElsewhere(t *testing.T) {
	reg := startRegistry(t, nil)
	dir := module(t)
	base := legacyImage(t, platform)
	if _, err := image.Push(t.Context(), base, reg+"/shop/legacy", "v1"); err != nil {
		t.Fatal(err)
	}
	// The same image again, in an index with another platform whose image must not be taken.
	other := legacyImage(t, v1.Platform{OS: "linux", Architecture: "s390x"})
	if platform.Architecture == "s390x" {
		other = legacyImage(t, v1.Platform{OS: "linux", Architecture: "amd64"})
	}
	op, _ := other.ConfigFile()
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: op.OS, Architecture: op.Architecture}}},
		mutate.IndexAddendum{Add: base, Descriptor: v1.Descriptor{Platform: &platform}})
	if _, err := image.PushIndex(t.Context(), idx, reg+"/shop/legacy", "multi"); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ name, ref, binary string }{
		{"image", reg + "/shop/legacy:v1", "/usr/local/bin/legacy"},
		{"index", reg + "/shop/legacy:multi", "/usr/local/bin/legacy"},
		{"binary named by a symlink", reg + "/shop/legacy:v1", "/usr/bin/legacy-link"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := builder(t, dir, reg)
			res, err := b.BuildService(t.Context(), appimage.Service{Main: "./cmd/legacy", Image: tt.ref, Binary: tt.binary})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.Built.Ref, reg+"/dev/legacy@sha256:") {
				t.Errorf("pushed to %s, want %s/dev/legacy@sha256:...", res.Built.Ref, reg)
			}
			if res.BinaryPath != "/usr/local/bin/legacy" || res.Built.Name != "legacy" {
				t.Errorf("binary path %q name %q, want /usr/local/bin/legacy and legacy", res.BinaryPath, res.Built.Name)
			}
			if !bytes.Contains(res.Binary, []byte("built-by-hotpod legacy")) || !bytes.HasPrefix(res.Binary, []byte("\x7fELF")) {
				t.Error("Result.Binary is not the ELF binary built from ./cmd/legacy")
			}
			if !slices.Equal(res.Entrypoint, []string{"/usr/local/bin/legacy"}) || !slices.Equal(res.Cmd, []string{"--port=8080"}) ||
				res.PathEnv != "/usr/local/bin:/usr/bin:/bin" || res.User != "1000:1000" || res.WorkingDir != "/srv" || res.KoData != "" {
				t.Errorf("result describes another image: %+v", res)
			}

			img := pull(t, res.Built.Ref)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			want := v1.Config{User: "1000:1000", WorkingDir: "/srv", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=prod"},
				Entrypoint: []string{"/usr/local/bin/legacy"}, Cmd: []string{"--port=8080"}}
			if cf.OS != platform.OS || cf.Architecture != platform.Architecture || cf.Config.User != want.User ||
				cf.Config.WorkingDir != want.WorkingDir || !slices.Equal(cf.Config.Env, want.Env) ||
				!slices.Equal(cf.Config.Entrypoint, want.Entrypoint) || !slices.Equal(cf.Config.Cmd, want.Cmd) {
				t.Errorf("config changed: %s/%s %+v", cf.OS, cf.Architecture, cf.Config)
			}
			files := fsOf(t, img)
			for p, data := range map[string]string{
				"etc/ssl/certs/ca-certificates.crt": "CERTIFICATES",
				"srv/static/index.html":             "<h1>legacy</h1>",
				"app/state":                         "state",
				"usr/local/bin/legacy":              string(res.Binary),
			} {
				if f, ok := files[p]; !ok || f.data != data {
					t.Errorf("/%s: present %v, %d bytes; want the %d bytes it had", p, ok, len(f.data), len(data))
				}
			}
			if _, ok := files["usr/local/bin/old-tool"]; ok {
				t.Error("/usr/local/bin/old-tool came back: the image had deleted it")
			}
			if l, ok := files["usr/bin/legacy-link"]; !ok || l.hdr.Typeflag != tar.TypeSymlink {
				t.Error("/usr/bin/legacy-link is no longer the image's symlink")
			}
			bin := files["usr/local/bin/legacy"].hdr
			if bin.Mode&0o7777 != 0o751 || bin.Uid != 1000 || bin.Gid != 1000 {
				t.Errorf("binary mode %o owner %d:%d, want the image's 0750 (+x for all) and 1000:1000", bin.Mode, bin.Uid, bin.Gid)
			}
			if d := files["app"].hdr; d.Mode&0o777 != 0o700 || d.Uid != 1000 {
				t.Errorf("/app mode %o owner %d: a layer replaced the image's directory", d.Mode, d.Uid)
			}
			if a, ok := files["hotpod/agent"]; !ok || !strings.HasPrefix(a.data, "\x7fELF") || a.hdr.Mode&0o111 == 0 {
				t.Error("no executable agent at /hotpod/agent")
			}
		})
	}
}

// TestBuiltElsewhereErrors: each failure is one line that names the image and what to do, and
// the checks that need no build fail before the build.
func TestBuiltElsewhereErrors(t *testing.T) {
	reg := startRegistry(t, nil)
	locked := startRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		})
	})
	dir := module(t)
	if _, err := image.Push(t.Context(), legacyImage(t, platform), reg+"/shop/legacy", "v1"); err != nil {
		t.Fatal(err)
	}
	otherArch := "s390x"
	if platform.Architecture == otherArch {
		otherArch = "amd64"
	}
	tests := []struct {
		name     string
		svc      appimage.Service
		platform v1.Platform
		want     string
	}{
		{"no such tag", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v9", Binary: "/usr/local/bin/legacy"}, platform,
			"cannot pull " + reg + "/shop/legacy:v9: " + reg + " has no such image: push it there first"},
		{"no such repository", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/nothing:v1", Binary: "/x"}, platform,
			"has no such image"},
		{"registry refuses", appimage.Service{Main: "./cmd/legacy", Image: locked + "/shop/legacy:v1", Binary: "/x"}, platform,
			"refused access: log in with docker login " + locked},
		{"registry down", appimage.Service{Main: "./cmd/legacy", Image: "127.0.0.1:1/shop/legacy:v1", Binary: "/x"}, platform,
			"registry 127.0.0.1:1 does not answer"},
		{"another platform", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v1", Binary: "/usr/local/bin/legacy"},
			v1.Platform{OS: "linux", Architecture: otherArch}, "is for linux/" + platform.Architecture + ", the nodes run linux/" + otherArch},
		{"binary not in the image", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v1", Binary: "/usr/bin/legacy"}, platform,
			"no file /usr/bin/legacy in it: set binary:"},
		{"binary deleted by a layer", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v1", Binary: "/usr/local/bin/old-tool"}, platform,
			"no file /usr/local/bin/old-tool in it"},
		{"binary is a directory", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v1", Binary: "/srv/static"}, platform,
			"/srv/static in it is not a regular file"},
		{"binary not absolute", appimage.Service{Main: "./cmd/legacy", Image: reg + "/shop/legacy:v1", Binary: "legacy"}, platform,
			"want the absolute path"},
		{"not a reference", appimage.Service{Main: "./cmd/legacy", Image: "Shop/Legacy", Binary: "/x"}, platform,
			`image "Shop/Legacy" is not a valid reference`},
		{"not a main package", appimage.Service{Main: "./cmd/nothing", Image: reg + "/shop/legacy:v1", Binary: "/usr/local/bin/legacy"}, platform,
			"./cmd/nothing (main of " + reg + "/shop/legacy:v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := builder(t, dir, reg)
			b.Platform = tt.platform
			_, err := b.BuildService(t.Context(), tt.svc)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.want)
			}
		})
	}
}

// TestKo checks ko's conventions: PATH gets /ko-app appended to the base's (or becomes it),
// KO_DATA_PATH is set, and kodata/ files are at /var/run/ko.
func TestKo(t *testing.T) {
	reg := startRegistry(t, nil)
	dir := module(t)
	distroless := pushBase(t, reg, "distroless", []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"})
	noPath := pushBase(t, reg, "nopath", nil)
	tests := []struct {
		name, base, main string
		wantPath         string
		kodata           bool
	}{
		{"kodata on a base with PATH", distroless, "example.com/shop/cmd/kapp", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/ko-app", true},
		{"scratch", "scratch", "./cmd/kapp", "/usr/local/bin:/usr/bin:/bin:/ko-app", true},
		{"base without PATH", noPath, "./cmd/kapp", "/ko-app", true},
		{"no kodata", distroless, "./cmd/legacy", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/ko-app", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := builder(t, dir, reg)
			b.Base = tt.base
			res, err := b.BuildService(t.Context(), appimage.Service{Main: tt.main})
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(tt.main)
			if res.PathEnv != tt.wantPath {
				t.Errorf("PATH %q, want %q", res.PathEnv, tt.wantPath)
			}
			if !slices.Contains(res.Env, "KO_DATA_PATH=/var/run/ko") {
				t.Errorf("env %q lacks KO_DATA_PATH=/var/run/ko", res.Env)
			}
			if res.BinaryPath != "/ko-app/"+name || !slices.Equal(res.Entrypoint, []string{"/ko-app/" + name}) || res.Cmd != nil {
				t.Errorf("binary %q entrypoint %q cmd %q", res.BinaryPath, res.Entrypoint, res.Cmd)
			}
			wantKoData := ""
			if tt.kodata {
				wantKoData = filepath.Join(dir, "cmd/kapp/kodata")
			}
			if res.KoData != wantKoData {
				t.Errorf("KoData %q, want %q", res.KoData, wantKoData)
			}
			img := pull(t, res.Built.Ref)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cf.Config.Env, res.Env) {
				t.Errorf("pushed env %q, result says %q", cf.Config.Env, res.Env)
			}
			files := fsOf(t, img)
			if f := files["ko-app/"+name]; f.data != string(res.Binary) {
				t.Errorf("/ko-app/%s is not the built binary", name)
			}
			if _, ok := files["hotpod/agent"]; !ok {
				t.Error("no /hotpod/agent")
			}
			if !tt.kodata {
				if _, ok := files["var/run/ko"]; ok {
					t.Error("/var/run/ko exists for a package without kodata")
				}
				return
			}
			for p, data := range map[string]string{"var/run/ko/a.html": "<h1>shop</h1>\n", "var/run/ko/css/b.c": "body{}\n", "var/run/ko/terms.txt": "terms\n"} {
				f, ok := files[p]
				if !ok {
					t.Errorf("no /%s", p)
					continue
				}
				if f.data != data || f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode&0o777 != 0o555 {
					t.Errorf("/%s: %q mode %o type %c, want a regular file %q mode 555", p, f.data, f.hdr.Mode, f.hdr.Typeflag, data)
				}
			}
			if cf.Config.Env[len(cf.Config.Env)-1] != "KO_DATA_PATH=/var/run/ko" {
				t.Errorf("env %q", cf.Config.Env)
			}
		})
	}

	b := builder(t, dir, reg)
	_, err := b.BuildService(t.Context(), appimage.Service{Main: "./cmd/escape"})
	if err == nil || !strings.Contains(err.Error(), "outside the module") || strings.Contains(err.Error(), "\n") {
		t.Errorf("kodata symlink out of the module: %v, want a one-line refusal", err)
	}
}

func pushBase(t *testing.T, reg, repo string, env []string) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layer(t, entry{Path: "etc/", Dir: true, Mode: 0o755}))
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = platform.OS, platform.Architecture
	cf.Config.Env = env
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := image.Push(t.Context(), img, fmt.Sprintf("%s/base/%s", reg, repo), "v1")
	if err != nil {
		t.Fatal(err)
	}
	return ref.String()
}
