package delta

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// FullWindow is the zstd window of a Full patch: what the agent's decoder holds in memory.
const FullWindow = 8 << 20

// EncodeRaw makes a patch that carries target as it is.
func EncodeRaw(target []byte) []byte { return EncodeRawSum(target, Sum(target)) }

// EncodeRawSum is EncodeRaw for a target whose SHA-256 the caller has already computed: hashing a
// 70 MB binary twice costs 50 ms of the edit.
func EncodeRawSum(target []byte, sum Hash) []byte {
	h := Header{Kind: Raw, Target: sum, Size: uint64(len(target))}
	return append(h.Append(make([]byte, 0, HeaderLen+len(target))), target...)
}

// Encode makes a patch that turns base into target. With a nil base it makes a Full patch, else a
// Segmented one.
func Encode(base, target []byte, level zstd.EncoderLevel) ([]byte, error) {
	var baseSum Hash
	if base != nil {
		baseSum = Sum(base)
	}
	return EncodeKnown(base, baseSum, target, Sum(target), level)
}

// EncodeKnown is Encode for a caller that already has both SHA-256s (the shipper keeps every
// build by its hash): on a 70 MB binary each costs 50 ms.
func EncodeKnown(base []byte, baseSum Hash, target []byte, targetSum Hash, level zstd.EncoderLevel) ([]byte, error) {
	h := Header{Kind: Full, Target: targetSum, Size: uint64(len(target))}
	if base != nil {
		// Segmented for every base, small ones too: on hello's 5.8 MB binary a one-line edit
		// encodes in 15 ms to 303 B, against 35 ms (warm) to 215 ms (in the loop) and 1.9 KB
		// as one Delta frame (docs/delta.md).
		h.Kind, h.Base = Segmented, baseSum
		return encodeSegmentedPatch(h, base, target, level, segmentSize, segmentMargin)
	}
	// The decoder keeps a window of history in memory: a whole 70 MB binary would be 70 MB in
	// the agent while the old app still runs, next to a tight memory limit.
	window := min(windowFor(h.Size, 0), FullWindow)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), // the header's SHA-256 covers the result
		zstd.WithWindowSize(int(window)))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(target, h.Append(make([]byte, 0, HeaderLen+len(target)/4))), nil
}

// EncodeSegmented makes a Segmented patch with segments of size bytes, each compressed against
// the base around the same relative position, margin bytes either side.
func EncodeSegmented(base, target []byte, level zstd.EncoderLevel, size, margin int) ([]byte, error) {
	h := Header{Kind: Segmented, Base: Sum(base), Target: Sum(target), Size: uint64(len(target))}
	return encodeSegmentedPatch(h, base, target, level, size, margin)
}

func encodeSegmentedPatch(h Header, base, target []byte, level zstd.EncoderLevel, size, margin int) ([]byte, error) {
	payload, err := encodeSegmented(base, target, level, size, margin)
	if err != nil {
		return nil, err
	}
	return append(h.Append(make([]byte, 0, HeaderLen+len(payload))), payload...), nil
}
