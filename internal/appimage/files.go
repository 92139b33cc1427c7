package appimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hotpod/hotpod/internal/image"
)

// fileInfo is what the image says about a file.
type fileInfo struct {
	path     string // absolute, symlinks resolved
	mode     int64
	uid, gid int
}

// findFile looks for the regular file at p in img, following symlinks, from the top layer down
// (stopping at the first layer that has it or deletes it, so a binary in a top layer costs only
// that layer's download).
func findFile(img v1.Image, p string) (*fileInfo, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	want := path.Clean(p)
	for hop := 0; hop < 16; hop++ {
		h, err := lookup(layers, want)
		if err != nil {
			return nil, err
		}
		switch {
		case h == nil:
			return nil, fmt.Errorf("no file %s in it: set binary: to where its Dockerfile puts the app's binary (the COPY destination)", p)
		case h.Typeflag == tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(want), target)
			}
			want = path.Clean(target)
			continue
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%s in it is not a regular file: set binary: to the app's binary", p)
		}
		return &fileInfo{path: want, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}, nil
	}
	return nil, fmt.Errorf("%s in it: too many symbolic links", p)
}

// lookup returns the header of abs in the topmost layer that has it, or nil when no layer has it
// or a layer above deletes it (an OCI whiteout of the file, or an opaque whiteout of a directory
// above it).
func lookup(layers []v1.Layer, abs string) (*tar.Header, error) {
	rel := strings.TrimPrefix(abs, "/")
	dir, base := path.Split(rel)
	for i := len(layers) - 1; i >= 0; i-- {
		h, gone, err := scanLayer(layers[i], rel, dir+".wh."+base, dir)
		if err != nil {
			return nil, fmt.Errorf("read layer %d: %w", i, err)
		}
		if h != nil {
			return h, nil
		}
		if gone {
			return nil, nil
		}
	}
	return nil, nil
}

func scanLayer(l v1.Layer, rel, whiteout, dir string) (*tar.Header, bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	gone := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, gone, nil
		}
		if err != nil {
			return nil, false, err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case name == rel:
			return h, false, nil
		case name == whiteout:
			gone = true
		case path.Base(name) == ".wh..wh..opq" && strings.HasPrefix(dir, path.Dir(name)+"/"):
			gone = true // a directory above the file was replaced in this layer
		}
	}
}

// kodataFiles lists the layer that puts root's files at KoDataPath, as ko does: symlinks are
// followed (their targets must stay inside the module, so no file from elsewhere on the machine
// lands in an image), files and directories are mode 0555 with fixed times.
func kodataFiles(root, moduleDir string) ([]image.File, error) {
	files := []image.File{{Path: "var/", Mode: 0o755}, {Path: "var/run/", Mode: 0o755}, {Path: strings.TrimPrefix(KoDataPath, "/") + "/", Mode: 0o555}}
	allowed, err := filepath.EvalSymlinks(moduleDir)
	if err != nil {
		return nil, err
	}
	var walk func(dir, inImage string, depth int) error
	walk = func(dir, inImage string, depth int) error {
		if depth > 32 {
			return fmt.Errorf("kodata %s: directories nested too deep (a symlink loop?)", dir)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			hostPath := filepath.Join(dir, e.Name())
			real, err := filepath.EvalSymlinks(hostPath)
			if err != nil {
				return fmt.Errorf("kodata %s: %w", hostPath, err)
			}
			if r, err := filepath.Rel(allowed, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return fmt.Errorf("kodata %s points to %s, outside the module %s: copy the file into kodata instead", hostPath, real, moduleDir)
			}
			fi, err := os.Stat(real)
			if err != nil {
				return err
			}
			p := inImage + "/" + e.Name()
			if fi.IsDir() {
				files = append(files, image.File{Path: p + "/", Mode: 0o555})
				if err := walk(real, p, depth+1); err != nil {
					return err
				}
				continue
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			b, err := os.ReadFile(real)
			if err != nil {
				return err
			}
			files = append(files, image.File{Path: p, Mode: 0o555, Data: b})
		}
		return nil
	}
	if err := walk(root, strings.TrimPrefix(KoDataPath, "/"), 0); err != nil {
		return nil, err
	}
	return files, nil
}
