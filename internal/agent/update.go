package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
	"github.com/hotpod/hotpod/internal/delta"
)

// ErrBadPatch wraps every reason a patch is refused before anything changed: truncated, corrupt,
// made against another base.
var ErrBadPatch = errors.New("patch refused")

// ErrNoSpace says the new binary could not be written; the old one keeps running.
var ErrNoSpace = errors.New("no space left for the new binary")

// Update applies the patch read from r to the running binary, swaps the result in and restarts
// the app. On any error before the swap, nothing has changed: the old binary keeps running. A raw
// patch (the whole binary) is hashed and written to disk as it arrives, which hides both behind
// the transfer on a fast link; any other kind is read whole, then decoded against the running
// binary.
func (s *Supervisor) Update(p agentapi.UpdateParams, r io.Reader) (agentapi.UpdateResult, error) {
	s.swap.Lock()
	defer s.swap.Unlock()
	t0 := time.Now()
	hdr := make([]byte, delta.HeaderLen)
	if n, err := io.ReadFull(r, hdr); err != nil {
		return agentapi.UpdateResult{}, fmt.Errorf("%w: patch truncated: %d bytes, the header alone is %d", ErrBadPatch, n, delta.HeaderLen)
	}
	h, err := delta.ParseHeader(hdr)
	if err != nil {
		return agentapi.UpdateResult{}, fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	var write func(io.Writer) error
	if h.Kind == delta.Raw {
		write = func(w io.Writer) error {
			err := copyVerified(w, r, h)
			t0 = time.Now() // the transfer is the link's time, not the agent's
			return err
		}
	} else {
		patch, err := io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(hdr), r), delta.MaxTarget+delta.HeaderLen))
		if err != nil {
			return agentapi.UpdateResult{}, fmt.Errorf("%w: reading it failed after %d bytes: %w", ErrBadPatch, len(patch), err)
		}
		t0 = time.Now()
		target, release, err := s.decode(h, patch)
		if err != nil {
			return agentapi.UpdateResult{}, err
		}
		defer release()
		write = func(w io.Writer) error { return writeVerified(w, target) }
	}
	old, err := s.install(int64(h.Size), write)
	if err != nil {
		return agentapi.UpdateResult{}, err
	}
	applied := time.Since(t0)
	s.mu.Lock()
	prevSHA, prevSize := s.sha, s.size
	s.sha, s.size = h.Target, int64(h.Size)
	s.mu.Unlock()
	res, err := s.restart(p)
	if err != nil && old != "" {
		// The new binary does not start at all (wrong architecture, say): put the old one back.
		if rerr := os.Rename(old, s.cfg.Binary); rerr == nil {
			s.mu.Lock()
			s.sha, s.size = prevSHA, prevSize
			s.startLocked() //nolint:errcheck // best effort: the old binary ran before
			s.mu.Unlock()
			old = ""
		}
	}
	if old != "" {
		os.Remove(old)
	}
	res.ApplyMS = agentapi.Ms(applied)
	return res, err
}

// decode decodes patch, whose header is h, against the running binary. The result is not yet
// verified (writeVerified does that while it writes); release unmaps the base once done with it.
func (s *Supervisor) decode(h delta.Header, patch []byte) (delta.Decoded, func(), error) {
	release := func() {}
	var base []byte
	if h.Kind.HasBase() {
		s.mu.Lock()
		cur := s.sha
		s.mu.Unlock()
		if h.Base != cur {
			return delta.Decoded{}, release, fmt.Errorf("%w: %w (it was made against %.12s; this agent runs %.12s): send the whole binary",
				ErrBadPatch, delta.ErrWrongBase, h.Base, cur)
		}
		var err error
		if base, release, err = mapFile(s.cfg.Binary); err != nil {
			return delta.Decoded{}, func() {}, fmt.Errorf("read the running binary: %w", err)
		}
	}
	d, err := delta.Decode(base, h.Base, patch)
	if err != nil {
		release()
		return delta.Decoded{}, func() {}, fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	return d, release, nil
}

// mapFile maps path read-only: the base of a delta is only read, and copying a 70 MB binary into
// memory first would cost tens of milliseconds.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() == 0 {
		return []byte{}, func() {}, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { syscall.Munmap(b) }, nil //nolint:errcheck // nothing to do about it
}

// writeVerified writes a decoded binary while hashing it on another core; a result that does
// not match its patch's header is an ErrBadPatch, and the caller removes what was written.
func writeVerified(w io.Writer, d delta.Decoded) error {
	verified := make(chan error, 1)
	go func() { verified <- d.Verify() }()
	_, err := w.Write(d.Bytes)
	if verr := <-verified; verr != nil {
		return fmt.Errorf("%w: %w", ErrBadPatch, verr)
	}
	return err
}

// copyVerified copies a raw patch's body from r to w and checks its size and hash; anything but
// a full disk is the patch's fault.
func copyVerified(w io.Writer, r io.Reader, h delta.Header) error {
	err := delta.CopyRaw(w, r, h)
	if err != nil && !isNoSpace(err) {
		return fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	return err
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// install writes the new binary beside the binary with write and renames it over the binary. It
// returns the name of a hard link that keeps the old binary's inode alive: freeing a large file
// while the old process exits costs tens of milliseconds of the restart, so it is removed after
// the new process runs.
func (s *Supervisor) install(size int64, write func(io.Writer) error) (old string, err error) {
	dir, name := filepath.Split(s.cfg.Binary)
	tmp := filepath.Join(dir, "."+name+".hotpod-new")
	mode := os.FileMode(0o755)
	if fi, err := os.Stat(s.cfg.Binary); err == nil {
		mode = fi.Mode().Perm() | 0o100
	}
	if err := writeFileSync(tmp, mode, write); err != nil {
		os.Remove(tmp)
		switch {
		case errors.Is(err, ErrBadPatch):
			return "", err
		case isNoSpace(err):
			return "", fmt.Errorf("%w in %s (%d bytes needed): the old binary keeps running; free space or give the volume more", ErrNoSpace, dir, size)
		}
		return "", fmt.Errorf("write the new binary beside the old one in %s: %w", dir, err)
	}
	old = filepath.Join(dir, "."+name+".hotpod-old")
	os.Remove(old)
	if os.Link(s.cfg.Binary, old) != nil {
		old = ""
	}
	if err := os.Rename(tmp, s.cfg.Binary); err != nil {
		os.Remove(tmp)
		if old != "" {
			os.Remove(old)
		}
		return "", fmt.Errorf("swap in the new binary: %w", err)
	}
	return old, nil
}

func writeFileSync(path string, mode os.FileMode, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, mode) // umask may have narrowed it
}

// Restart stops the app and starts the binary again.
func (s *Supervisor) Restart(p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	s.swap.Lock()
	defer s.swap.Unlock()
	return s.restart(p)
}

func (s *Supervisor) restart(p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	t0 := time.Now()
	s.stop(s.cfg.StopSignal)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return agentapi.UpdateResult{Status: s.Status()}, errors.New("the agent is shutting down")
	}
	err := s.startLocked()
	if err == nil {
		s.restarts++
	}
	proc := s.proc
	s.mu.Unlock()
	res := agentapi.UpdateResult{RestartMS: agentapi.Ms(time.Since(t0))}
	if err != nil {
		res.Status = s.Status()
		return res, err
	}
	if p.Wait == agentapi.WaitReady {
		select {
		case <-proc.ready:
			s.mu.Lock()
			res.ReadyMS = agentapi.Ms(proc.readyAt.Sub(proc.start))
			s.mu.Unlock()
		case <-proc.exited:
		case <-time.After(p.Timeout):
		}
	}
	res.Status = s.Status()
	return res, nil
}

// Seed copies the image's binary at from to path, where updates will replace it, unless path
// exists already (the container restarted and keeps its emptyDir, with the newest binary).
func Seed(from, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("seed the app binary: %w", err)
	}
	tmp := path + ".hotpod-seed"
	if err := writeFileSync(tmp, 0o755, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("seed the app binary into %s: %w (is the directory writable?)", filepath.Dir(path), err)
	}
	return os.Rename(tmp, path)
}
