package delta

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// A changed run of a few bytes, compressed against a dictionary far larger than itself (a
// binary's last block, a small base), must decode: left to choose, the encoder declared a 1 KB
// window for such a frame while its matches reached 256 KB back into the dictionary, and every
// such patch was refused as corrupt ("window size exceeded").
func TestTinyChangedRunRoundTrips(t *testing.T) {
	random := make([]byte, 256<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for _, tail := range []string{"", "v2", "version 2", string(bytes.Repeat([]byte("x"), 900)), string(random[:5000])} {
		base := append(bytes.Clone(random), "version 1"...)
		target := append(bytes.Clone(random), tail...)
		p, err := Encode(base, target, zstd.SpeedBetterCompression)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := ParseHeader(p); h.Kind != Segmented {
			t.Fatalf("tail %d bytes: a %v patch, want segmented", len(tail), h.Kind)
		}
		got, err := Apply(base, p)
		if err != nil || !bytes.Equal(got, target) {
			t.Fatalf("tail %d bytes: %v", len(tail), err)
		}
		if len(p) > HeaderLen+len(tail)+200 {
			t.Errorf("tail %d bytes: a %d-byte patch, want the unchanged 256 KB copied", len(tail), len(p))
		}
	}
}
