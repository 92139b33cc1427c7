package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func serveRegistry(args []string) error {
	fs := flag.NewFlagSet("registry", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5000", "listen address")
	dir := fs.String("dir", "", "blob directory")
	fs.Parse(args)
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	h := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir)),
		registry.Logger(log.New(os.Stderr, "", log.LstdFlags)))
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 30 * time.Second}
	return srv.ListenAndServe()
}

// tarLayer makes a layer of files (path → content) and directories (path ending in / → mode).
type entry struct {
	path string
	mode int64
	data []byte
	uid  int
}

func tarLayer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.path, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(e.path, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (ioReadCloser, error) { return nopCloser{bytes.NewReader(b)}, nil })
}

func image(layers []v1.Layer, cfg v1.Config) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

func pauseImage(args []string) error {
	fs := flag.NewFlagSet("pause-image", flag.ExitOnError)
	bin := fs.String("binary", "", "the pause binary")
	tag := fs.String("tag", "localhost/hotpod/pause:3.10", "image name")
	out := fs.String("out", "", "tarball to write")
	fs.Parse(args)
	b, err := os.ReadFile(*bin)
	if err != nil {
		return err
	}
	l, err := tarLayer([]entry{{path: "pause", mode: 0o755, data: b}})
	if err != nil {
		return err
	}
	img, err := image([]v1.Layer{l}, v1.Config{Entrypoint: []string{"/pause"}})
	if err != nil {
		return err
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(*out, ref, img)
}

// bases pushes the two base images the tests use: an empty scratch image, and a distroless-like
// static image with a non-root user (uid 65532), CA certificates and tzdata.
func bases(args []string) error {
	fs := flag.NewFlagSet("bases", flag.ExitOnError)
	reg := fs.String("registry", "127.0.0.1:5000", "registry to push to")
	fs.Parse(args)
	path := v1.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}
	scratch, err := image(nil, path)
	if err != nil {
		return err
	}
	files := []entry{
		{path: "etc/", mode: 0o755}, {path: "tmp/", mode: 0o1777}, {path: "home/", mode: 0o755},
		{path: "home/nonroot/", mode: 0o700, uid: 65532},
		{path: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
	}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files = append(files, entry{path: "etc/ssl/", mode: 0o755}, entry{path: "etc/ssl/certs/", mode: 0o755},
			entry{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	} else {
		return fmt.Errorf("CA certificates: %w (apt-get install ca-certificates)", err)
	}
	tz, err := zoneinfo("/usr/share/zoneinfo")
	if err != nil {
		return fmt.Errorf("tzdata: %w (apt-get install tzdata)", err)
	}
	files = append(files, tz...)
	l, err := tarLayer(files)
	if err != nil {
		return err
	}
	nonroot, err := image([]v1.Layer{l}, v1.Config{User: "65532:65532", WorkingDir: "/home/nonroot",
		Env: append(path.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")})
	if err != nil {
		return err
	}
	for tag, img := range map[string]v1.Image{"base-scratch": scratch, "base-nonroot": nonroot} {
		ref, err := name.NewTag(*reg+"/hotpod/"+tag+":latest", name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		d, _ := img.Digest()
		fmt.Printf("%s@%s\n", ref, d)
	}
	return nil
}

func zoneinfo(root string) ([]entry, error) {
	out := []entry{{path: "usr/", mode: 0o755}, {path: "usr/share/", mode: 0o755}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "usr/share/zoneinfo/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		switch {
		case d.IsDir():
			out = append(out, entry{path: strings.TrimSuffix(rel, "/") + "/", mode: 0o755})
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, entry{path: rel, mode: 0o644, data: b})
		}
		return nil
	})
	return out, err
}
