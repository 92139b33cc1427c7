package agent

import (
	"bufio"
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

// ErrShuttingDown refuses an update or restart once the agent has begun to stop.
var ErrShuttingDown = errors.New("the agent is shutting down")

// Update applies the patch read from r to the running binary, swaps the result in and restarts
// the app. On any error before the swap, nothing has changed: the old binary keeps running.
//
// The patch is decoded as it arrives, straight into a new file beside the binary (memory stays
// bounded whatever the binary's size), without the swap lock: a slow or stalled upload holds up
// neither another update nor the agent's shutdown. Only the swap and the restart take the lock.
func (s *Supervisor) Update(p agentapi.UpdateParams, r io.Reader) (agentapi.UpdateResult, error) {
	body := &lastRead{r: r}
	hdr := make([]byte, delta.HeaderLen)
	if n, err := io.ReadFull(body, hdr); err != nil {
		return agentapi.UpdateResult{}, fmt.Errorf("%w: patch truncated: %d bytes, the header alone is %d", ErrBadPatch, n, delta.HeaderLen)
	}
	h, err := delta.ParseHeader(hdr)
	if err != nil {
		return agentapi.UpdateResult{}, fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	var (
		base    delta.Base
		baseSum delta.Hash
	)
	if h.Kind.HasBase() {
		// The file opened under the same lock as the hash is read: a concurrent swap renames a
		// new file over the name, this one stays what was hashed.
		s.mu.Lock()
		baseSum = s.sha
		f, err := os.Open(s.cfg.Binary)
		s.mu.Unlock()
		if h.Base != baseSum {
			if f != nil {
				f.Close()
			}
			return agentapi.UpdateResult{}, fmt.Errorf("%w: %w (it was made against %.12s; this agent runs %.12s): send the whole binary",
				ErrBadPatch, delta.ErrWrongBase, h.Base, baseSum)
		}
		if err != nil {
			return agentapi.UpdateResult{}, fmt.Errorf("read the running binary: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return agentapi.UpdateResult{}, fmt.Errorf("read the running binary: %w", err)
		}
		base = io.NewSectionReader(f, 0, fi.Size())
	}
	tmp, err := s.write(h, func(w io.Writer) error { return delta.ApplyStream(w, h, body, base, baseSum) })
	if err != nil {
		return agentapi.UpdateResult{}, err
	}
	body.swapAt = time.Now()
	res, err := s.swapIn(tmp, h, p)
	// Apply: what decoding, writing and syncing cost beyond the transfer itself.
	res.ApplyMS = agentapi.Ms(body.swapAt.Sub(body.at))
	return res, err
}

// lastRead remembers when the body was last read from, and (set by Update) when the result was
// ready to swap.
type lastRead struct {
	r      io.Reader
	at     time.Time
	swapAt time.Time
}

func (l *lastRead) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.at = time.Now()
	return n, err
}

// write makes the new binary beside the old one with fill, syncs it and returns its name. On
// any error it removes what it wrote.
func (s *Supervisor) write(h delta.Header, fill func(io.Writer) error) (string, error) {
	dir, name := filepath.Split(s.cfg.Binary)
	f, err := os.CreateTemp(dir, "."+name+".hotpod-new-*")
	if err != nil {
		if isNoSpace(err) {
			return "", fmt.Errorf("%w in %s: the old binary keeps running; free space or give the volume more", ErrNoSpace, dir)
		}
		return "", fmt.Errorf("write the new binary beside the old one in %s: %w (the binary's directory must be writable: an emptyDir)", dir, err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(f.Name())
		switch {
		case isNoSpace(err):
			return "", fmt.Errorf("%w in %s (%d bytes needed): the old binary keeps running; free space or give the volume more", ErrNoSpace, dir, h.Size)
		case errors.Is(err, delta.ErrWrite), errors.Is(err, errSync):
			return "", fmt.Errorf("write the new binary beside the old one in %s: %w", dir, err)
		}
		return "", fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := fill(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", delta.ErrWrite, err))
	}
	mode := os.FileMode(0o755)
	if fi, err := os.Stat(s.cfg.Binary); err == nil {
		mode = fi.Mode().Perm() | 0o100
	}
	if err := f.Chmod(mode); err != nil {
		return fail(fmt.Errorf("%w: %w", errSync, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("%w: %w", errSync, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("%w: %w", errSync, err))
	}
	return f.Name(), nil
}

var errSync = errors.New("sync the new binary")

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// swapIn renames the verified new binary tmp over the binary and restarts the app, under the swap
// lock. The old binary's inode stays alive through a hard link until the new process runs
// (freeing a large file while the old process exits costs tens of milliseconds of the restart),
// and comes back if the new binary cannot even be started.
func (s *Supervisor) swapIn(tmp string, h delta.Header, p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	s.swap.Lock()
	defer s.swap.Unlock()
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		os.Remove(tmp)
		return agentapi.UpdateResult{Status: s.Status()}, ErrShuttingDown
	}
	dir, name := filepath.Split(s.cfg.Binary)
	old := filepath.Join(dir, "."+name+".hotpod-old")
	os.Remove(old)
	if os.Link(s.cfg.Binary, old) != nil {
		old = ""
	}
	if err := os.Rename(tmp, s.cfg.Binary); err != nil {
		s.mu.Unlock()
		os.Remove(tmp)
		if old != "" {
			os.Remove(old)
		}
		return agentapi.UpdateResult{Status: s.Status()}, fmt.Errorf("swap in the new binary: %w", err)
	}
	prevSHA, prevSize := s.sha, s.size
	s.sha, s.size = h.Target, int64(h.Size)
	s.mu.Unlock()
	res, err := s.restart(p)
	if err != nil && old != "" && !errors.Is(err, ErrShuttingDown) {
		// The new binary does not start at all (wrong architecture, say): put the old one back.
		if rerr := os.Rename(old, s.cfg.Binary); rerr == nil {
			s.mu.Lock()
			s.sha, s.size = prevSHA, prevSize
			if serr := s.startLocked(); serr != nil {
				s.startFailedLocked(serr)
			}
			s.mu.Unlock()
			old = ""
			res.Status = s.Status()
		}
	}
	if old != "" {
		os.Remove(old)
	}
	return res, err
}

// Restart stops the app and starts the binary again.
func (s *Supervisor) Restart(p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	s.swap.Lock()
	defer s.swap.Unlock()
	return s.restart(p)
}

func (s *Supervisor) restart(p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	t0 := time.Now()
	s.mu.Lock()
	old, d := s.proc, s.dbg
	s.mu.Unlock()
	var proc *process
	if d != nil && d.rpc != nil && s.debugOn() {
		// Under the debugger: Delve restarts the app, its clients and breakpoints stay.
		var err error
		if proc, err = s.restartDebug(d, false); err != nil {
			if old != nil {
				s.stop(old, StopKill, syscall.SIGKILL, 0)
			}
			return agentapi.UpdateResult{RestartMS: agentapi.Ms(time.Since(t0)), Status: s.Status()}, err
		}
	} else {
		if old != nil {
			s.stopForRestart(old)
		}
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			return agentapi.UpdateResult{Status: s.Status()}, ErrShuttingDown
		}
		err := s.startLocked()
		if err == nil {
			s.restarts++
		}
		proc = s.proc
		s.mu.Unlock()
		if err != nil {
			return agentapi.UpdateResult{RestartMS: agentapi.Ms(time.Since(t0)), Status: s.Status()}, err
		}
	}
	res := agentapi.UpdateResult{RestartMS: agentapi.Ms(time.Since(t0))}
	if p.Wait == agentapi.WaitReady {
		select {
		case <-proc.ready:
			s.mu.Lock()
			res.ReadyMS = agentapi.Ms(proc.readyAt.Sub(proc.start))
			s.mu.Unlock()
		case <-proc.exited:
		case <-proc.hopeless:
		case <-proc.paused: // stopped in the debugger: the answer says where
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
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("seed the app binary: %w", err)
	}
	defer src.Close()
	tmp := path + ".hotpod-seed"
	if err := copyInto(tmp, 0o755, src); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("seed the app binary into %s: %w (is the directory writable?)", filepath.Dir(path), err)
	}
	return os.Rename(tmp, path)
}

// copyInto writes what r holds to a new file at path with mode, synced.
func copyInto(path string, mode os.FileMode, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask may have narrowed it
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
