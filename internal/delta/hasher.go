package delta

import (
	"crypto/sha256"
	"hash"
	"sync"
)

// hasher computes a SHA-256 on a goroutine of its own, so that verifying a target overlaps
// reading the base, decoding and writing the result instead of following each write: SHA-256 is
// the largest single cost of applying a patch (about 30 of 80 ms for a 42 MB binary on the
// project's machine), and it cannot be split. Writes are copied into a few fixed buffers, handed
// over in order: memory stays bounded (hashBuffers × hashBufferSize, or the target's size if
// smaller) whatever the target's size.
type hasher struct {
	cur  []byte
	made int
	full chan []byte // to the hashing goroutine, in order
	free chan []byte // back from it
	done chan struct{}
	sum  hash.Hash
	once sync.Once
}

const (
	hashBuffers    = 4
	hashBufferSize = 1 << 20
)

// newHasher returns a hasher for size bytes (more may be written, in buffers of that size).
func newHasher(size uint64) *hasher {
	h := &hasher{
		full: make(chan []byte, hashBuffers),
		free: make(chan []byte, hashBuffers),
		done: make(chan struct{}),
		sum:  sha256.New(),
	}
	h.cur, h.made = make([]byte, 0, max(1, min(hashBufferSize, size))), 1
	go func() {
		defer close(h.done)
		for b := range h.full {
			h.sum.Write(b)
			h.free <- b[:0]
		}
	}()
	return h
}

// Write queues a copy of p for hashing; p may be reused when it returns.
func (h *hasher) Write(p []byte) {
	for len(p) > 0 {
		n := copy(h.cur[len(h.cur):cap(h.cur)], p)
		h.cur, p = h.cur[:len(h.cur)+n], p[n:]
		if len(h.cur) == cap(h.cur) {
			h.full <- h.cur
			if h.made < hashBuffers {
				h.cur, h.made = make([]byte, 0, cap(h.cur)), h.made+1
			} else {
				h.cur = <-h.free
			}
		}
	}
}

// Sum waits for everything written to be hashed and returns the hash. Write must not be called
// after it.
func (h *hasher) Sum() Hash {
	h.stop(true)
	return Hash(h.sum.Sum(nil))
}

// stop ends the hashing goroutine (hashing what is queued if flush), once; Sum calls it, and a
// caller that gives up before Sum must call stop(false) so that the goroutine does not outlive it.
func (h *hasher) stop(flush bool) {
	h.once.Do(func() {
		if flush && len(h.cur) > 0 {
			h.full <- h.cur
		}
		close(h.full)
		<-h.done
	})
}
