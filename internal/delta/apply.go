package delta

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Apply decodes patch against base and returns the target, verified against the size and SHA-256
// the header announces. base may be nil for a Raw or Full patch. It is ApplyStream in memory: the
// CLI's tests and tools use it; the agent streams.
func Apply(base, patch []byte) ([]byte, error) {
	h, err := ParseHeader(patch)
	if err != nil {
		return nil, err
	}
	var (
		b   Base
		sum Hash
	)
	if h.Kind.HasBase() {
		b, sum = bytes.NewReader(base), Sum(base)
	}
	var out bytes.Buffer
	out.Grow(int(min(h.Size, 64<<20)))
	if err := ApplyStream(&out, h, bytes.NewReader(patch[HeaderLen:]), b, sum); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// check compares a result's size and SHA-256 with what its patch's header announced.
func check(h Header, size uint64, sum Hash) error {
	if size != h.Size {
		return fmt.Errorf("corrupt or truncated patch: got %d bytes, header says %d", size, h.Size)
	}
	if sum != h.Target {
		return fmt.Errorf("corrupt patch: result has SHA-256 %.12s, header says %.12s", sum, h.Target)
	}
	return nil
}

// dictID names the raw dictionary in the frame; any fixed non-zero value works since the header,
// not the frame, says which base is meant.
const dictID = 0x48504431

// windowFor is the smallest power-of-two window that lets the target reference any byte of the
// base history (dictionary + target so far).
func windowFor(target uint64, base int) uint64 {
	need := target + uint64(base)
	w := uint64(zstd.MinWindowSize)
	for w < need && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return w
}
