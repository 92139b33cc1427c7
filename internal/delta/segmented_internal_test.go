package delta

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Segments found unchanged in the base, even moved, go as copies: no frame to decode; in a segment
// that changed, only the changed 64 KB blocks get a frame.
func TestSegmentedCopiesUnchangedSegments(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := make([]byte, 4<<20)
	for i := range base {
		base[i] = byte(r.Uint32())
	}
	// An insertion near the start moves everything after it; a change near the end.
	target := append(append(bytes.Clone(base[:100<<10]), bytes.Repeat([]byte("new code "), 100)...), base[100<<10:]...)
	copy(target[3<<20:], "an edit")
	const size, margin = 256 << 10, 128 << 10
	payload, err := encodeSegmented(base, target, zstd.SpeedBetterCompression, size, margin)
	if err != nil {
		t.Fatal(err)
	}
	n, k := binary.Uvarint(payload)
	payload = payload[k:]
	copies, framed := 0, 0
	for range n {
		var v [4]uint64
		for j := range v {
			v[j], k = binary.Uvarint(payload)
			payload = payload[k:]
		}
		if v[3] == 0 {
			copies++
			if v[2] != v[0] {
				t.Fatalf("copied segment of %d bytes from a %d-byte region", v[0], v[2])
			}
		} else {
			framed += int(v[0])
		}
		payload = payload[v[3]:]
	}
	// The block with the insertion and the block with the edit need frames, nothing else.
	if want := int(n) - 2; copies != want {
		t.Errorf("%d of %d parts copied, want %d", copies, n, want)
	}
	if framed > 2*block {
		t.Errorf("%d bytes went in frames, want at most the 2 changed blocks (%d)", framed, 2*block)
	}
	p, err := EncodeSegmented(base, target, zstd.SpeedBetterCompression, size, margin)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Apply(base, p); err != nil || !bytes.Equal(got, target) {
		t.Fatalf("apply: %v", err)
	}
}

// A copy segment must copy exactly its target length.
func TestSegmentedCopyLengthChecked(t *testing.T) {
	base := bytes.Repeat([]byte("x"), 100)
	for _, seg := range [][4]uint64{{10, 0, 11, 0}, {10, 0, 9, 0}, {0, 0, 0, 0}, {10, 95, 10, 0}} {
		payload := binary.AppendUvarint(nil, 1)
		for _, v := range seg {
			payload = binary.AppendUvarint(payload, v)
		}
		h := Header{Kind: Segmented, Base: Sum(base), Size: 10}
		if err := ApplyStream(io.Discard, h, bytes.NewReader(payload), bytes.NewReader(base), h.Base); err == nil {
			t.Errorf("segment %v accepted", seg)
		}
	}
}
