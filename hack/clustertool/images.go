package main

import (
	"context"
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
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hotpod/hotpod/internal/image"
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

var platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

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
	l, err := image.Layer([]image.File{{Path: "pause", Mode: 0o755, Data: b}})
	if err != nil {
		return err
	}
	base, err := image.Scratch(platform)
	if err != nil {
		return err
	}
	img, err := image.Append(base, image.Config{Entrypoint: []string{"/pause"}}, l)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(*out, ref, img)
}

// bases pushes the base images the tests use: an empty scratch image; a distroless-like static
// image with a non-root user (uid 65532), CA certificates and tzdata; and that image with a
// shell and tini (Debian's static busybox and tini), like the alpine images teams wrap their
// binaries in.
func bases(args []string) error {
	fs := flag.NewFlagSet("bases", flag.ExitOnError)
	reg := fs.String("registry", "127.0.0.1:5000", "registry to push to")
	fs.Parse(args)
	scratch, err := image.Scratch(platform)
	if err != nil {
		return err
	}
	files := []image.File{
		{Path: "etc/", Mode: 0o755}, {Path: "tmp/", Mode: 0o1777}, {Path: "home/", Mode: 0o755},
		{Path: "home/nonroot/", Mode: 0o700, UID: 65532, GID: 65532},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return fmt.Errorf("CA certificates: %w (apt-get install ca-certificates)", err)
	}
	files = append(files, image.File{Path: "etc/ssl/", Mode: 0o755}, image.File{Path: "etc/ssl/certs/", Mode: 0o755},
		image.File{Path: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: ca})
	tz, err := zoneinfo("/usr/share/zoneinfo")
	if err != nil {
		return fmt.Errorf("tzdata: %w (apt-get install tzdata)", err)
	}
	l, err := image.Layer(append(files, tz...))
	if err != nil {
		return err
	}
	nonroot, err := image.Append(scratch, image.Config{User: "65532:65532", WorkingDir: "/home/nonroot",
		Env: []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}}, l)
	if err != nil {
		return err
	}
	var shell []image.File
	for _, f := range []struct{ from, to string }{{"/bin/busybox", "bin/busybox"}, {"/bin/busybox", "bin/sh"}, {"/usr/bin/tini-static", "sbin/tini"}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			return fmt.Errorf("%w (apt-get install busybox-static tini)", err)
		}
		shell = append(shell, image.File{Path: f.to, Mode: 0o755, Data: b})
	}
	sl, err := image.Layer(append([]image.File{{Path: "bin/", Mode: 0o755}, {Path: "sbin/", Mode: 0o755}}, shell...))
	if err != nil {
		return err
	}
	busybox, err := image.Append(nonroot, image.Config{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin:/sbin"}}, sl)
	if err != nil {
		return err
	}
	for tag, img := range map[string]v1.Image{"base-scratch": scratch, "base-nonroot": nonroot, "base-busybox": busybox} {
		d, err := image.Push(context.Background(), img, *reg+"/hotpod/"+tag, "latest")
		if err != nil {
			return err
		}
		fmt.Println(d)
	}
	return nil
}

func zoneinfo(root string) ([]image.File, error) {
	out := []image.File{{Path: "usr/", Mode: 0o755}, {Path: "usr/share/", Mode: 0o755}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "usr/share/zoneinfo/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		switch {
		case d.IsDir():
			out = append(out, image.File{Path: strings.TrimSuffix(rel, "/") + "/", Mode: 0o755})
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out = append(out, image.File{Path: rel, Mode: 0o644, Data: b})
		}
		return nil
	})
	return out, err
}
