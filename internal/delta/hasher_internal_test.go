package delta

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The hasher's sum is SHA-256 of what was written, whatever the sizes of the writes: empty,
// tiny, straddling and exactly filling its buffers, larger than all of them together.
func TestHasherSumsWhatWasWritten(t *testing.T) {
	data := make([]byte, 3*hashBuffers*hashBufferSize+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		name   string
		n      int
		writes []int
	}{
		{"nothing", 0, nil},
		{"empty writes", 0, []int{0, 0}},
		{"one byte", 1, []int{1}},
		{"a buffer exactly", hashBufferSize, []int{hashBufferSize}},
		{"straddling buffers", 3*hashBufferSize + 7, []int{hashBufferSize - 1, 2, hashBufferSize, hashBufferSize + 4}},
		{"more than all buffers at once", len(data), []int{len(data)}},
		{"the copy path's writes", len(data), []int{256 << 10}},
		{"odd writes", len(data), []int{4093}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHasher(uint64(tc.n))
			for off, i := 0, 0; off < tc.n; i++ {
				n := min(tc.writes[i%len(tc.writes)], tc.n-off)
				h.Write(data[off : off+n])
				off += n
			}
			for _, n := range tc.writes[:min(len(tc.writes), 2)] {
				if n == 0 {
					h.Write(nil)
				}
			}
			if got, want := h.Sum(), Hash(sha256.Sum256(data[:tc.n])); got != want {
				t.Errorf("sum of %d bytes in writes of %v: %s, want %s", tc.n, tc.writes, got, want)
			}
		})
	}
}

// A writer may reuse its buffer as soon as Write returns: the hasher has its own copy.
func TestHasherCopiesWrites(t *testing.T) {
	buf := bytes.Repeat([]byte{'a'}, 1000)
	h := newHasher(1000)
	var want []byte
	for i := range 5000 {
		for j := range buf {
			buf[j] = byte(i + j)
		}
		h.Write(buf)
		want = append(want, buf...)
	}
	if got := h.Sum(); got != Hash(sha256.Sum256(want)) {
		t.Error("the sum changed with the writer's buffer after Write returned")
	}
}

// An apply that fails midway stops the hashing goroutine: none is left behind.
func TestFailedApplyLeavesNoGoroutine(t *testing.T) {
	base := bytes.Repeat([]byte("base "), 1<<20)
	target := append(bytes.Clone(base[:3<<20]), []byte("changed")...)
	p, err := Encode(base, target, zstd.SpeedDefault)
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	h, _ := ParseHeader(p[:HeaderLen])
	for range 20 {
		truncated := p[HeaderLen : len(p)-3]
		if err := ApplyStream(&bytes.Buffer{}, h, bytes.NewReader(truncated), bytes.NewReader(base), Sum(base)); err == nil {
			t.Fatal("a truncated patch applied")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after 20 failed applies, %d before", n, before)
	}
}
