package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/bench/incluster"
	"github.com/hotpod/hotpod/internal/gopkg"
	"github.com/hotpod/hotpod/internal/image"
	"github.com/hotpod/hotpod/internal/manifest"
)

// inClusterCPU is the container's CPU limit for the incluster strategy: the original article
// measured its strategy E with 1 CPU (and 0.5).
const inClusterCPU = "1"

// firstBuildTimeout bounds the container's first build, from a cold cache on inClusterCPU:
// every dependency and the standard library are compiled there once.
const firstBuildTimeout = 20 * time.Minute

// inClusterStrategy is the article's strategy E: the sources and a Go toolchain (the one on this
// machine) are in the image; each edit sends the changed file into the running container, which
// compiles it (within its CPU limit, with its own build cache) and restarts the app
// (package incluster, cmd/hotpod-incluster).
type inClusterStrategy struct{ clusterDefaults }

func (inClusterStrategy) Name() string { return InCluster }

func (inClusterStrategy) Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error) {
	platforms, err := c.Kube.Platforms(ctx)
	if err != nil {
		return nil, err
	}
	p := platforms[0]
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		return nil, fmt.Errorf("the toolchain image is made from this machine's Go (%s/%s), the cluster runs %s/%s",
			runtime.GOOS, runtime.GOARCH, p.OS, p.Architecture)
	}
	ref, err := c.inClusterImage(ctx, w, p)
	if err != nil {
		return nil, err
	}
	objs, err := manifest.Read(strings.NewReader(w.manifestWith(ref,
		"        resources: {limits: {cpu: \""+inClusterCPU+"\"}}\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n",
		"      volumes: [{name: tmp, emptyDir: {}}]\n")), "bench")
	if err != nil {
		return nil, err
	}
	applied, err := c.Kube.ApplyObjects(ctx, ns, objs)
	if err != nil {
		return nil, err
	}
	c.logf("%s · incluster: the container compiles the app and its dependencies once (%s CPU), then serves", w.name, inClusterCPU)
	if err := c.Kube.WaitRollout(ctx, applied, firstBuildTimeout, func(s string) { c.logf("%s · incluster: %s", w.name, s) }); err != nil {
		return nil, err
	}
	pod, err := c.readyPod(ctx, ns, "app=bench-"+w.name, ref)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctl, _, err := c.Kube.PortForward(fctx, ns, pod, 7070)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(w.dir, w.file)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: answerTimeout}
	var out []sample
	for i := 0; i <= c.Iterations; i++ {
		stamp, err := w.edit()
		if err != nil {
			return nil, err
		}
		body, err := tarFile(w.file, filepath.ToSlash(rel))
		if err != nil {
			return nil, err
		}
		if err := postSync(ctx, client, fmt.Sprintf("http://127.0.0.1:%d%s", ctl, incluster.PathSync), body); err != nil {
			return nil, err
		}
		// The app is polled once the sync says it restarted (answerThrough opens the
		// port-forward), as the image strategy polls once the rollout is done.
		at, err := c.answerThrough(ctx, ns, pod, stamp)
		if err != nil {
			return nil, err
		}
		s := sample{ms: agentapi.Ms(at.Sub(time.Unix(0, stamp))), bytes: int64(len(body)), appMS: c.appSays(ctx, ns, pod)}
		if i > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

func postSync(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sync into the container: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sync into the container: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var r incluster.Result
	return json.Unmarshal(msg, &r)
}

// tarFile is a tar stream of one file under name.
func tarFile(file, name string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inClusterImage builds and pushes the toolchain image: the base, this machine's Go toolchain
// under /usr/local/go, the workload's module (vendored when it has dependencies: the container
// has no way to the module proxy) under /src, and the sync helper.
func (c Config) inClusterImage(ctx context.Context, w *workload, p v1.Platform) (string, error) {
	c.logf("%s · incluster: making the toolchain image", w.name)
	src, err := os.MkdirTemp("", "hotpod-bench-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	vendored, err := vendoredCopy(ctx, w.dir, src)
	if err != nil {
		return "", err
	}
	helper := filepath.Join(src, ".hotpod-incluster")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", helper, "./cmd/hotpod-incluster")
	build.Dir = c.RepoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the sync helper (run hotpod bench in a hotpod checkout): %v: %s", err, out)
	}
	helperBin, err := os.ReadFile(helper)
	if err != nil {
		return "", err
	}
	os.Remove(helper)
	goroot, err := gopkg.Env(ctx, "", "GOROOT")
	if err != nil {
		return "", err
	}
	tc, err := tree(goroot, "usr/local/go", toolchainFile(p.OS+"_"+p.Architecture))
	if err != nil {
		return "", fmt.Errorf("toolchain layer: %w", err)
	}
	srcFiles, err := tree(src, "src", func(string, fs.DirEntry) bool { return true })
	if err != nil {
		return "", err
	}
	layers := []v1.Layer{}
	for _, files := range [][]image.File{tc, srcFiles, {{Path: "hotpod/", Mode: 0o755}, {Path: "hotpod/incluster", Mode: 0o755, Data: helperBin}}} {
		l, err := image.Layer(files)
		if err != nil {
			return "", err
		}
		layers = append(layers, l)
	}
	base, err := image.Base(ctx, c.Base, p)
	if err != nil {
		return "", err
	}
	env := []string{"GOROOT=/usr/local/go", "GOCACHE=/tmp/gocache", "GOPATH=/tmp/gopath", "HOME=/tmp", "TMPDIR=/tmp",
		"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOPROXY=off", "GOTELEMETRY=off"}
	if vendored {
		env = append(env, "GOFLAGS=-mod=vendor")
	}
	rel, err := filepath.Rel(w.dir, filepath.Dir(w.file))
	if err != nil {
		return "", err
	}
	img, err := image.Append(base, image.Config{Platform: p, Env: env, WorkingDir: "/src",
		Entrypoint: []string{"/hotpod/incluster", "--src", "/src", "--pkg", "./" + filepath.ToSlash(rel), "--listen", "127.0.0.1:7070"}}, layers...)
	if err != nil {
		return "", err
	}
	d, err := image.Push(ctx, img, strings.TrimSuffix(c.Repo, "/")+"/incluster-"+w.name, "bench")
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// toolchainFile keeps what `go build` of a pure-Go program needs from a GOROOT: the go command,
// the compiler, assembler and linker for osArch, and the standard library's sources without
// tests (the commands' own sources are left out).
func toolchainFile(osArch string) func(string, fs.DirEntry) bool {
	tools := map[string]bool{"compile": true, "link": true, "asm": true, "cgo": true, "buildid": true, "pack": true}
	return func(rel string, d fs.DirEntry) bool {
		parts := strings.Split(rel, "/")
		switch {
		case rel == "." || rel == "VERSION" || rel == "go.env" || rel == "bin" || rel == "bin/go":
			return true
		case parts[0] == "pkg":
			return len(parts) == 1 || parts[1] == "include" ||
				(parts[1] == "tool" && (len(parts) == 2 || parts[2] == osArch && (len(parts) == 3 || tools[parts[3]])))
		case parts[0] == "src":
			if d.IsDir() {
				return d.Name() != "testdata" && rel != "src/cmd"
			}
			return !strings.HasSuffix(rel, "_test.go")
		}
		return false
	}
}

// tree reads the files under root that keep accepts (a rejected directory is skipped whole) as
// layer files under prefix, directories included.
func tree(root, prefix string, keep func(rel string, d fs.DirEntry) bool) ([]image.File, error) {
	var files []image.File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := path.Join(prefix, rel)
		if d.IsDir() {
			// Writable by anyone: the sync helper writes into /src whatever user the base runs as.
			files = append(files, image.File{Path: name + "/", Mode: 0o777})
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, image.File{Path: name, Mode: int64(info.Mode().Perm() | 0o666), Data: b})
		return nil
	})
	if prefix != "" && len(files) > 0 {
		// The prefix's own parents.
		var parents []image.File
		for d := path.Dir(prefix); d != "." && d != "/"; d = path.Dir(d) {
			parents = append([]image.File{{Path: d + "/", Mode: 0o755}}, parents...)
		}
		files = append(parents, files...)
	}
	return files, err
}
