// Package delta encodes a new binary against the binary a pod already runs, and applies such a
// patch. A patch is a small self-describing header followed by its payload: the new binary as it
// is (raw), compressed on its own (full: the base is unknown), or in segments, each copied from
// the old binary or compressed with the region of the old binary around it as a raw dictionary
// (segmented, what Encode makes; segmented.go). The older delta kind, one frame against the whole
// old binary, is still read. The header names the base and the result by SHA-256, so applying a
// patch to the wrong base, or a truncated or corrupt patch, is refused before anything reaches
// disk.
//
// The decoding half is imported by the agent, which ships into every container: keep it on the
// standard library plus klauspost/compress/zstd.
package delta

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Kind says how the payload of a patch is to be read.
type Kind byte

const (
	// Full: the payload is the whole target, zstd-compressed, with no dictionary.
	Full Kind = 1
	// Delta: the payload is the target compressed with the base as a raw zstd dictionary.
	Delta Kind = 2
	// Raw: the payload is the target as it is. On a fast link (loopback, a local cluster's
	// port-forward) compressing costs more time than it saves.
	Raw Kind = 3
	// Segmented: a delta of a large binary, in segments each compressed against the region of the
	// base around it (segmented.go).
	Segmented Kind = 4
)

func (k Kind) String() string {
	switch k {
	case Full:
		return "full"
	case Delta, Segmented:
		return "delta"
	case Raw:
		return "raw"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// HasBase reports whether patches of kind k apply to a base binary.
func (k Kind) HasBase() bool { return k == Delta || k == Segmented }

// Hash is a SHA-256 digest of a binary.
type Hash [sha256.Size]byte

// Sum hashes b.
func Sum(b []byte) Hash { return sha256.Sum256(b) }

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash (no base).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads a hex SHA-256.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%q is not a hex SHA-256 (64 hex digits)", s)
	}
	copy(h[:], b)
	return h, nil
}

// Header starts every patch.
type Header struct {
	Kind Kind
	// Base is the SHA-256 of the binary the patch applies to (zero for Full).
	Base Hash
	// Target and Size describe the binary the patch produces.
	Target Hash
	Size   uint64
}

var magic = [4]byte{'H', 'P', 'D', '1'}

// HeaderLen is the encoded size of a Header.
const HeaderLen = 4 + 1 + sha256.Size + sha256.Size + 8

// MaxTarget bounds the size a patch may announce: a decoder must not be talked into allocating
// more than any real binary needs.
const MaxTarget = 2 << 30

// ErrWrongBase is returned when a patch is applied to another binary than the one it was made
// against.
var ErrWrongBase = errors.New("patch was made against another base binary")

// Append appends the encoded header to b.
func (h Header) Append(b []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, byte(h.Kind))
	b = append(b, h.Base[:]...)
	b = append(b, h.Target[:]...)
	return binary.BigEndian.AppendUint64(b, h.Size)
}

// ParseHeader reads the header at the start of p.
func ParseHeader(p []byte) (Header, error) {
	var h Header
	if len(p) < HeaderLen {
		return h, fmt.Errorf("patch truncated: %d bytes, the header alone is %d", len(p), HeaderLen)
	}
	if [4]byte(p[:4]) != magic {
		return h, errors.New("not a hotpod patch (bad magic)")
	}
	h.Kind = Kind(p[4])
	copy(h.Base[:], p[5:])
	copy(h.Target[:], p[5+sha256.Size:])
	h.Size = binary.BigEndian.Uint64(p[5+2*sha256.Size:])
	switch {
	case h.Kind != Full && h.Kind != Delta && h.Kind != Raw && h.Kind != Segmented:
		return h, fmt.Errorf("unknown patch %v", h.Kind)
	case !h.Kind.HasBase() && !h.Base.IsZero():
		return h, fmt.Errorf("%v patch names a base", h.Kind)
	case h.Kind.HasBase() && h.Base.IsZero():
		return h, errors.New("delta patch names no base")
	case h.Size > MaxTarget:
		return h, fmt.Errorf("patch announces %d bytes, more than the %d a binary may have", h.Size, MaxTarget)
	}
	return h, nil
}
