package delta

import (
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Apply decodes patch against base and returns the target, verified against the SHA-256 the
// header announces. base may be nil for a Full patch.
func Apply(base, patch []byte) ([]byte, error) {
	h, err := ParseHeader(patch)
	if err != nil {
		return nil, err
	}
	var sum Hash
	if h.Kind.HasBase() {
		sum = Sum(base)
	}
	return ApplyKnown(base, sum, patch)
}

// ApplyKnown is Apply for a caller that knows base's SHA-256 (the agent recorded it when it
// verified the binary it installed): hashing a large base again would cost tens of milliseconds.
// The target is verified all the same.
func ApplyKnown(base []byte, baseSum Hash, patch []byte) ([]byte, error) {
	d, err := Decode(base, baseSum, patch)
	if err != nil {
		return nil, err
	}
	if err := d.Verify(); err != nil {
		return nil, err
	}
	return d.Bytes, nil
}

// Decoded is a patch's result before its final check.
type Decoded struct {
	Bytes  []byte
	header Header
}

// Verify checks the result against the size and SHA-256 its patch announced. Nothing may use
// Bytes before it passed.
func (d Decoded) Verify() error {
	_, err := verify(d.header, d.Bytes)
	return err
}

// Decode is ApplyKnown without the final check, for a caller that overlaps it with other work
// (the agent hashes the result while it writes it to disk) and calls Verify before using it.
func Decode(base []byte, baseSum Hash, patch []byte) (Decoded, error) {
	h, err := ParseHeader(patch)
	if err != nil {
		return Decoded{}, err
	}
	if h.Kind.HasBase() && baseSum != h.Base {
		return Decoded{}, fmt.Errorf("%w (want %.12s, have %.12s)", ErrWrongBase, h.Base, baseSum)
	}
	var out []byte
	switch h.Kind {
	case Raw:
		out = patch[HeaderLen:]
	case Segmented:
		if out, err = applySegmented(base, patch[HeaderLen:], h.Size); err != nil {
			return Decoded{}, err
		}
	default:
		if out, err = decodeFrame(h, base, patch[HeaderLen:]); err != nil {
			return Decoded{}, err
		}
	}
	return Decoded{Bytes: out, header: h}, nil
}

// decodeFrame decodes a Full or Delta patch's zstd frame.
func decodeFrame(h Header, base, frame []byte) ([]byte, error) {
	opts := []zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		// The window may span the whole base: bound memory by what the header announced.
		zstd.WithDecoderMaxWindow(windowFor(h.Size, len(base))),
		zstd.WithDecoderMaxMemory(h.Size + 1),
	}
	if h.Kind == Delta {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, base))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(frame, make([]byte, 0, h.Size))
	if err != nil {
		return nil, fmt.Errorf("corrupt patch: %w", err)
	}
	return out, nil
}

func verify(h Header, out []byte) ([]byte, error) {
	if err := check(h, uint64(len(out)), Sum(out)); err != nil {
		return nil, err
	}
	return out, nil
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

// CopyRaw copies the body of a Raw patch with header h from r to w, hashing it on the way, and
// checks it as Apply would: the agent writes a whole binary to disk as it arrives. An error from
// w comes back as it is, so that the caller can tell a full disk from a bad patch.
func CopyRaw(w io.Writer, r io.Reader, h Header) error {
	if h.Kind != Raw {
		return fmt.Errorf("CopyRaw of a %v patch", h.Kind)
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, sum), io.LimitReader(r, int64(h.Size)+1))
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	return check(h, uint64(n), Hash(sum.Sum(nil)))
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
