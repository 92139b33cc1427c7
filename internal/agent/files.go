package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// ErrNoSyncDir refuses a file request to an agent started without --sync-dir.
var ErrNoSyncDir = errors.New("this agent syncs no files: start it with --sync-dir")

// ErrEscape refuses a file path that would leave the sync dir.
var ErrEscape = errors.New("path leaves the sync dir")

// ErrBadFile refuses a file whose content does not match its SHA-256.
var ErrBadFile = errors.New("file refused")

// MaxFile bounds one synced file.
const MaxFile = delta.MaxTarget

// PutFile writes what r holds to rel (a path relative to the sync dir, see
// agentapi.CheckFilePath) if its SHA-256 is sum: into a new file beside it, synced, then renamed
// over it, so the app reads the old file or the new one, never a part. Missing parent
// directories are made. The app keeps running.
func (s *Supervisor) PutFile(rel string, sum delta.Hash, r io.Reader) error {
	dir, name, err := s.resolve(rel, true)
	if err != nil {
		return err
	}
	target := filepath.Join(dir, name)
	mode := os.FileMode(0o644)
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %s is a directory: delete it first", ErrBadFile, rel)
		}
		if fi.Mode().IsRegular() {
			mode = fi.Mode().Perm()
		}
	}
	f, err := os.CreateTemp(dir, "."+name+".hotpod-sync-*")
	if err != nil {
		return s.fileErr(rel, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, MaxFile+1))
	switch {
	case err != nil && isNoSpace(err):
		return fail(s.fileErr(rel, err))
	case err != nil:
		return fail(fmt.Errorf("%w: %s: reading it failed after %d bytes: %w", ErrBadFile, rel, n, err))
	case n > MaxFile:
		return fail(fmt.Errorf("%w: %s is larger than %d bytes", ErrBadFile, rel, int64(MaxFile)))
	}
	if got := delta.Hash(h.Sum(nil)); got != sum {
		return fail(fmt.Errorf("%w: %s: got %d bytes with SHA-256 %.12s, the request says %.12s (truncated or corrupt)", ErrBadFile, rel, n, got, sum))
	}
	if err := f.Chmod(mode); err != nil {
		return fail(s.fileErr(rel, err))
	}
	if err := f.Sync(); err != nil {
		return fail(s.fileErr(rel, err))
	}
	if err := f.Close(); err != nil {
		return fail(s.fileErr(rel, err))
	}
	if err := os.Rename(f.Name(), target); err != nil {
		os.Remove(f.Name())
		return s.fileErr(rel, err)
	}
	return nil
}

// DeleteFile removes rel from the sync dir: a file or symlink, or a directory with what it
// holds. What is not there is not an error.
func (s *Supervisor) DeleteFile(rel string) error {
	dir, name, err := s.resolve(rel, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
		return s.fileErr(rel, err)
	}
	return nil
}

func (s *Supervisor) fileErr(rel string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w for %s in %s: free space or give the volume more", ErrNoSpace, rel, s.cfg.SyncDir)
	}
	return fmt.Errorf("sync %s into %s: %w", rel, s.cfg.SyncDir, err)
}

// resolve returns the directory rel's file is in, and its name, checking each parent on the way:
// a symlink among them must point inside the sync dir. With create, missing parents are made.
func (s *Supervisor) resolve(rel string, create bool) (dir, name string, err error) {
	if s.cfg.SyncDir == "" {
		return "", "", ErrNoSyncDir
	}
	if err := agentapi.CheckFilePath(rel); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrEscape, err)
	}
	root, err := filepath.EvalSymlinks(s.cfg.SyncDir)
	if err != nil {
		return "", "", fmt.Errorf("sync dir: %w", err)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return "", "", err
	}
	segs := strings.Split(rel, "/")
	cur := root
	for _, seg := range segs[:len(segs)-1] {
		next := filepath.Join(cur, seg)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist) && create:
			if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", "", s.fileErr(rel, err)
			}
		case err != nil:
			return "", "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", "", err
			}
			if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
				return "", "", fmt.Errorf("%w: %s goes through the symlink %s to %s", ErrEscape, rel, seg, real)
			}
			if fi, err = os.Stat(real); err != nil {
				return "", "", err
			}
			if !fi.IsDir() {
				return "", "", fmt.Errorf("sync %s: %s is not a directory", rel, seg)
			}
			next = real
		case !fi.IsDir():
			return "", "", fmt.Errorf("sync %s: %s is not a directory", rel, seg)
		}
		cur = next
	}
	return cur, segs[len(segs)-1], nil
}

// seedingMarker exists in the sync dir while SeedDir copies into it: a copy cut short is made
// again at the next start.
const seedingMarker = ".hotpod-seeding"

// SeedDir copies the tree at from into to (made if missing) unless to was seeded before: it holds
// something and no copy was cut short. A restarted container keeps its emptyDir, with the files
// synced since. Symlinks are copied as symlinks, modes kept.
func SeedDir(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("--sync-dir %s: %w (it must be writable: an emptyDir)", to, err)
	}
	entries, err := os.ReadDir(to)
	if err != nil {
		return fmt.Errorf("--sync-dir %s: %w", to, err)
	}
	marker := filepath.Join(to, seedingMarker)
	if _, err := os.Lstat(marker); len(entries) > 0 && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return fmt.Errorf("seed %s: %w (it must be writable: an emptyDir)", to, err)
	}
	err = filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil || rel == "." {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			os.Remove(dst)
			return os.Symlink(link, dst)
		case d.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			return nil
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			return copyInto(dst, fi.Mode().Perm(), src)
		}
		return nil // devices, sockets: not data
	})
	if err != nil {
		return fmt.Errorf("seed %s from %s: %w", to, from, err)
	}
	return os.Remove(marker)
}
