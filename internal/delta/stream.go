package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Base is the binary a patch applies to, read in place: the agent reads the running binary
// through its file (pread), so neither the whole base nor the whole target is ever held in memory.
type Base interface {
	io.ReaderAt
	Size() int64
}

// MaxDeltaBase bounds the base of a Delta patch (one zstd frame with the whole base as its
// dictionary, which the decoder holds in memory). Encode makes Segmented patches, so only a
// foreign patch (an older hotpod's, the bench's baseline) is a Delta one.
const MaxDeltaBase = 16 << 20

// ErrWrite wraps an error of the writer ApplyStream writes to: the patch is not at fault (a full
// disk, say).
var ErrWrite = errors.New("write the result")

// ApplyStream reads the body of a patch whose header h the caller has already read from r, and
// writes the target to w as it is decoded, hashing it on the way. base (nil for Raw and Full) must
// be the binary whose SHA-256 is baseSum. It fails when the result is not exactly what h
// announced (size, SHA-256): the caller must not use what was written unless it returns nil. An
// error of w wraps ErrWrite and w's own error (so ENOSPC can be told from a bad patch). Memory
// stays bounded whatever the target's size: a Segmented patch holds one segment, its frame and
// its dictionary at a time; a Full patch the zstd window its encoder used (Encode: 8 MiB); the
// SHA-256, computed beside the decoding, its 4 MiB of buffers.
func ApplyStream(w io.Writer, h Header, r io.Reader, base Base, baseSum Hash) error {
	if h.Kind.HasBase() {
		if base == nil || baseSum != h.Base {
			return fmt.Errorf("%w (want %.12s, have %.12s)", ErrWrongBase, h.Base, baseSum)
		}
	}
	out := &checkedWriter{w: w, sum: newHasher(h.Size), limit: h.Size}
	defer out.sum.stop(false)
	var err error
	switch h.Kind {
	case Raw:
		_, err = io.Copy(out, io.LimitReader(r, int64(h.Size)+1))
		if err != nil && !errors.Is(err, ErrWrite) && !errors.Is(err, errTooLong) {
			err = fmt.Errorf("patch truncated: %w", err)
		}
	case Full, Delta:
		err = streamFrame(out, h, r, base)
	case Segmented:
		err = streamSegmented(out, h, r, base)
	default:
		err = fmt.Errorf("unknown patch %v", h.Kind)
	}
	if err != nil {
		return err
	}
	if h.Kind != Raw {
		// Nothing may follow the payload.
		if n, _ := io.CopyN(io.Discard, r, 1); n != 0 {
			return errors.New("corrupt patch: data after its end")
		}
	}
	return check(h, out.n, out.sum.Sum())
}

var errTooLong = errors.New("corrupt patch: the result is longer than its header says")

// checkedWriter hashes and counts what passes through and refuses more than limit bytes, so a
// corrupt patch cannot fill the disk.
type checkedWriter struct {
	w     io.Writer
	sum   *hasher
	n     uint64
	limit uint64
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if uint64(len(p)) > c.limit-c.n {
		return 0, errTooLong
	}
	n, err := c.w.Write(p)
	c.sum.Write(p[:n])
	c.n += uint64(n)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	return n, nil
}

// streamFrame decodes a Full or Delta patch's single zstd frame as a stream.
func streamFrame(w io.Writer, h Header, r io.Reader, base Base) error {
	var dict []byte
	if h.Kind == Delta {
		if base.Size() > MaxDeltaBase {
			return fmt.Errorf("delta patch against a base of %d bytes: over %d, only segmented patches apply", base.Size(), MaxDeltaBase)
		}
		dict = make([]byte, base.Size())
		if _, err := base.ReadAt(dict, 0); err != nil {
			return fmt.Errorf("read the base: %w", err)
		}
	}
	opts := []zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(windowFor(h.Size, len(dict))),
		zstd.WithDecoderMaxMemory(h.Size + 1),
	}
	if dict != nil {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
	}
	dec, err := zstd.NewReader(r, opts...)
	if err != nil {
		return fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	if _, err := dec.WriteTo(w); err != nil {
		if errors.Is(err, ErrWrite) || errors.Is(err, errTooLong) {
			return err
		}
		return fmt.Errorf("corrupt patch: %w", err)
	}
	return nil
}

// byteReader reads the uvarints of a Segmented patch's table from the stream.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}

// streamSegmented decodes a Segmented payload part by part: a copied part is read from the base
// and written through, a frame is read whole (it is at most one segment, compressed) and decoded
// against its region of the base.
func streamSegmented(w io.Writer, h Header, r io.Reader, base Base) error {
	br := byteReader{r}
	n, err := binary.ReadUvarint(br)
	if err != nil || n == 0 || n > h.Size+1 {
		return errSegments
	}
	var (
		dict, frame, out []byte
		copyBuf          = make([]byte, 256<<10)
		done             uint64
		baseSize         = uint64(base.Size())
	)
	for i := uint64(0); i < n; i++ {
		var v [4]uint64
		for j := range v {
			if v[j], err = binary.ReadUvarint(br); err != nil {
				return errSegments
			}
		}
		tlen, doff, dlen, flen := v[0], v[1], v[2], v[3]
		if doff > baseSize || dlen > baseSize-doff || tlen > h.Size-done || flen > tlen+(1<<20) {
			return errSegments
		}
		if flen == 0 {
			if dlen != tlen || tlen == 0 {
				return errSegments
			}
			if _, err := io.CopyBuffer(w, io.NewSectionReader(base, int64(doff), int64(dlen)), copyBuf); err != nil {
				if errors.Is(err, ErrWrite) {
					return err
				}
				return fmt.Errorf("read the base: %w", err)
			}
			done += tlen
			continue
		}
		frame = grow(frame, flen)
		if _, err := io.ReadFull(r, frame); err != nil {
			return fmt.Errorf("corrupt or truncated patch: segment %d: %w", i, err)
		}
		dict = grow(dict, dlen)
		if _, err := base.ReadAt(dict, int64(doff)); err != nil {
			return fmt.Errorf("read the base: %w", err)
		}
		opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(windowFor(tlen, int(dlen))),
			zstd.WithDecoderMaxMemory(max(tlen+1, zstd.MinWindowSize))}
		if dlen > 0 {
			opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
		}
		dec, err := zstd.NewReader(nil, opts...)
		if err != nil {
			return err
		}
		out, err = dec.DecodeAll(frame, out[:0])
		dec.Close()
		if err != nil {
			return fmt.Errorf("corrupt patch: segment %d: %w", i, err)
		}
		if uint64(len(out)) != tlen {
			return fmt.Errorf("corrupt patch: segment %d decoded to %d bytes, table says %d", i, len(out), tlen)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		done += tlen
	}
	return nil
}

// grow returns b resized to n bytes, reusing its memory when it is large enough.
func grow(b []byte, n uint64) []byte {
	if uint64(cap(b)) >= n {
		return b[:n]
	}
	return make([]byte, n)
}
