package agent

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		base      delta.Base
		baseSum   delta.Hash
		closeBase = func() error { return nil }
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
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return agentapi.UpdateResult{}, fmt.Errorf("read the running binary: %w", err)
		}
		base = io.NewSectionReader(f, 0, fi.Size())
		// Closed once the new binary is written, not when Update returns: the old binary's
		// blocks are freed after the answer (see swapIn), and the last close would free them.
		closeBase = f.Close
	}
	tmp, err := s.write(h, func(w io.Writer) error { return delta.ApplyStream(w, h, body, base, baseSum) })
	closeBase()
	if err != nil {
		return agentapi.UpdateResult{}, err
	}
	body.swapAt = time.Now()
	res, err := s.swapIn(tmp, h, p)
	// Apply: what decoding, writing and verifying cost beyond the transfer itself.
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

// write makes the new binary beside the old one with fill and returns its name. On any error it
// removes what it wrote. It does not fsync (see swapIn); a full disk is still seen here, before
// anything changed: ext4, XFS and tmpfs reserve the space of a write when it is made, and the
// previous swap's old binary is gone before this one is written.
func (s *Supervisor) write(h delta.Header, fill func(io.Writer) error) (string, error) {
	s.waitFreed()
	dir, pattern := filepath.Split(beside(s.cfg.Binary, "new-*"))
	f, err := os.CreateTemp(dir, pattern)
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
		case errors.Is(err, delta.ErrWrite), errors.Is(err, errFinish):
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
		return fail(fmt.Errorf("%w: %w", errFinish, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("%w: %w", errFinish, err))
	}
	return f.Name(), nil
}

var errFinish = errors.New("finish the new binary")

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// swapIn puts the verified new binary tmp in the binary's place, records its SHA-256 beside it
// and restarts the app, under the swap lock. The old binary's inode stays alive through a link
// of its own until the new process runs (freeing a large file while the old process exits costs
// tens of milliseconds of the restart), and comes back if the new binary cannot even be started.
// Then the link is removed in the background: freeing the blocks is not the answer's business.
//
// Nothing on this path is fsynced, and no crash can make the agent run a torn binary:
//   - A container restart (the agent or the app killed, OOM, a liveness kill) keeps the node's
//     page cache: the emptyDir holds every byte written, synced or not.
//   - A node crash or power loss may lose unsynced data: the binary may be empty, short or hold
//     stale blocks, the exchange (or rename) may be lost, the record may be lost or torn, each
//     independently. The record holds only the SHA-256 of a binary the agent verified whole, so
//     a binary that matches it is that binary, whatever else was lost; anything else is not
//     trusted, and the agent starts the image's binary (Config.Seed) instead. The CLI sees a pod
//     that runs another binary than the current build and sends the build again.
//   - A binary an older agent wrote has no record: it is replaced by the image's too. Harmless:
//     the CLI sends the current build again, as after a crash.
//
// The new binary takes the name's place by an exchange where the filesystem can (see
// exchangeFiles: a rename over the name costs ext4 milliseconds), so the old binary's link is
// the name the new one was written under; elsewhere by a link to the old binary and a rename.
// Either link's name is new for each swap (a temporary file's name exists once while it does;
// the numbers are used once), so a removal still running (removeOld) can never take a newer
// swap's link, which the rollback needs.
func (s *Supervisor) swapIn(tmp string, h delta.Header, p agentapi.UpdateParams) (agentapi.UpdateResult, error) {
	s.swap.Lock()
	defer s.swap.Unlock()
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		os.Remove(tmp)
		return agentapi.UpdateResult{Status: s.Status()}, ErrShuttingDown
	}
	s.swaps++
	// Exchanged, tmp names the old binary: its link. Otherwise the link is made before the
	// rename; each number is used once in the agent's life, so a file of that name is a
	// leftover of another.
	old := tmp
	if exchange(tmp, s.cfg.Binary) != nil {
		old = beside(s.cfg.Binary, "old-"+strconv.Itoa(s.swaps))
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
	}
	prevSHA, prevSize := s.sha, s.size
	s.sha, s.size = h.Target, int64(h.Size)
	s.mu.Unlock()
	s.record(h.Target)
	res, err := s.restart(p)
	if err != nil && old != "" && !errors.Is(err, ErrShuttingDown) {
		// The new binary does not start at all (wrong architecture, say): put the old one back.
		if rerr := os.Rename(old, s.cfg.Binary); rerr == nil {
			s.record(prevSHA)
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
		s.removeOld(old)
	}
	return res, err
}

// exchange is exchangeFiles; tests wrap it (see WrapExchange).
var exchange = exchangeFiles

// removeOld removes the old binary's link old in the background, after the removals before it.
func (s *Supervisor) removeOld(old string) {
	done := make(chan struct{})
	s.mu.Lock()
	prev := s.freeing
	s.freeing = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		os.Remove(old)
	}()
}

// waitFreed waits until the old binaries of past swaps are removed: a new binary is written only
// where they were, so a volume holds at most two binaries at once, as when removal was inline.
func (s *Supervisor) waitFreed() {
	s.mu.Lock()
	c := s.freeing
	s.mu.Unlock()
	if c != nil {
		<-c
	}
}

// beside names a file of the agent's own beside binary, in the binary's directory (the emptyDir):
// ".<name>.hotpod-<what>". Every such file is the agent's, so removeLeftovers can sweep them.
func beside(binary, what string) string {
	dir, name := filepath.Split(binary)
	return filepath.Join(dir, "."+name+".hotpod-"+what)
}

// recordName is the file beside binary that holds the SHA-256 of the binary the agent put there.
func recordName(binary string) string { return beside(binary, "sha256") }

// record writes sum as the binary's record (a new file put in the old one's place, exchanged or
// renamed, not synced: see swapIn). A record that cannot be written is removed, so that a record
// names the binary that runs or none; either way the next container start replaces an
// unrecorded binary by the image's, which is safe.
func (s *Supervisor) record(sum delta.Hash) {
	if err := writeRecord(s.cfg.Binary, sum); err != nil {
		os.Remove(recordName(s.cfg.Binary))
		fmt.Fprintf(s.cfg.Stderr, "hotpod-agent: record the new binary's SHA-256: %v (if the container restarts, it starts the image's binary and hotpod dev sends the current build again)\n", err)
	}
}

func writeRecord(binary string, sum delta.Hash) error {
	path := recordName(binary)
	dir, name := filepath.Split(path)
	f, err := os.CreateTemp(dir, name+"-new-*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(sum.String() + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && exchange(f.Name(), path) == nil {
		// The record is in place; f's name now holds the previous one, a leftover like any
		// other (removeLeftovers sweeps it at the next start should this removal fail).
		os.Remove(f.Name())
		return nil
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// recorded reads the binary's record: ok is false when there is none or it holds no SHA-256.
func recorded(binary string) (sum delta.Hash, ok bool) {
	b, err := os.ReadFile(recordName(binary))
	if err != nil {
		return delta.Hash{}, false
	}
	sum, err = delta.ParseHash(strings.TrimSpace(string(b)))
	return sum, err == nil
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

// trustBinary makes sure the binary at cfg.Binary is one to run and returns its SHA-256 and
// size: with a seed (the image's binary), a binary whose record does not match (see swapIn), or
// none at all, is replaced by a copy of the seed, saying why when one was there. Without a seed,
// a binary without a record is run as it is (no agent has swapped it), and one whose record does
// not match is refused.
func trustBinary(cfg Config) (delta.Hash, int64, error) {
	sum, size, err := hashFile(cfg.Binary)
	if cfg.Seed != "" && errors.Is(err, os.ErrNotExist) {
		return seed(cfg.Seed, cfg.Binary)
	}
	if err != nil {
		return delta.Hash{}, 0, fmt.Errorf("read the app binary: %w", err)
	}
	rec, ok := recorded(cfg.Binary)
	switch {
	case ok && rec == sum, !ok && cfg.Seed == "":
		return sum, size, nil
	case cfg.Seed == "":
		return delta.Hash{}, 0, fmt.Errorf("the binary %s does not match its record %s (a node crash during an update?), and there is no --seed to start from instead: pass the image's binary as --seed, or remove the record to run it as it is",
			cfg.Binary, recordName(cfg.Binary))
	}
	why := "does not match its record (a node crash during an update?)"
	if !ok {
		why = "has no record of its SHA-256 (an older agent wrote it, or a node crash during an update?)"
	}
	fmt.Fprintf(cfg.Stderr, "hotpod-agent: the binary in %s %s: starting the image's binary; hotpod dev sends the current build again\n",
		filepath.Dir(cfg.Binary), why)
	return seed(cfg.Seed, cfg.Binary)
}

// seed copies the image's binary at from to path, where updates will replace it, and records it.
// It runs at the container's start, not on the edit's path: the copy is synced.
func seed(from, path string) (delta.Hash, int64, error) {
	src, err := os.Open(from)
	if err != nil {
		return delta.Hash{}, 0, fmt.Errorf("seed the app binary: %w", err)
	}
	defer src.Close()
	dir := filepath.Dir(path)
	tmp := beside(path, "seed")
	h := sha256.New()
	err = copyInto(tmp, 0o755, io.TeeReader(src, h))
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return delta.Hash{}, 0, fmt.Errorf("seed the app binary into %s: %w (is the directory writable?)", dir, err)
	}
	sum := delta.Hash(h.Sum(nil))
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return delta.Hash{}, 0, fmt.Errorf("seed the app binary into %s: %w", dir, err)
	}
	if err := writeRecord(path, sum); err != nil {
		return delta.Hash{}, 0, fmt.Errorf("seed the app binary into %s: record its SHA-256: %w", dir, err)
	}
	return sum, fi.Size(), nil
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
