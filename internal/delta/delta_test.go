package delta_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/delta"
	"github.com/klauspost/compress/zstd"
)

func TestRoundTripOnRealBinaries(t *testing.T) {
	v := buildVersions(t, "-s -w")
	for _, c := range []struct {
		name         string
		base, target []byte
		// maxRatio bounds the delta against the target's size: far below a compressed whole
		// binary (~0.45) is the point of a delta.
		maxRatio float64
	}{
		{"one-line", v.base, v.oneLine, 0.01},
		{"bigger", v.base, v.bigger, 0.3},
		{"same", v.base, v.base, 0.001},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := delta.Encode(c.base, c.target, zstd.SpeedBetterCompression)
			if err != nil {
				t.Fatal(err)
			}
			got, err := delta.Apply(c.base, p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.target) {
				t.Fatal("applied delta differs from the target")
			}
			if r := float64(len(p)) / float64(len(c.target)); r > c.maxRatio {
				t.Fatalf("delta is %d bytes, %.3f of the target; want under %.3f", len(p), r, c.maxRatio)
			}
			full, err := delta.Encode(nil, c.target, zstd.SpeedFastest)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := delta.Apply(nil, full); err != nil || !bytes.Equal(got, c.target) {
				t.Fatalf("full patch: %v", err)
			}
			if got, err := delta.Apply(nil, delta.EncodeRaw(c.target)); err != nil || !bytes.Equal(got, c.target) {
				t.Fatalf("raw patch: %v", err)
			}
		})
	}
}

func TestApplyRefusesBadPatches(t *testing.T) {
	v := buildVersions(t, "-s -w")
	good, err := delta.Encode(v.base, v.oneLine, zstd.SpeedBetterCompression)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(p []byte, i int) []byte { p = bytes.Clone(p); p[i] ^= 0x40; return p }
	hdr := func(mut func(*delta.Header)) []byte {
		h, err := delta.ParseHeader(good)
		if err != nil {
			t.Fatal(err)
		}
		mut(&h)
		return append(h.Append(nil), good[delta.HeaderLen:]...)
	}
	cases := []struct {
		name  string
		base  []byte
		patch []byte
		want  string
	}{
		{"wrong base", v.oneLine, good, "another base"},
		{"no base", nil, good, "another base"},
		{"truncated payload", v.base, good[:len(good)-20], "corrupt"},
		{"truncated header", v.base, good[:delta.HeaderLen-1], "truncated"},
		{"payload bit flip", v.base, flip(good, len(good)-30), "corrupt"},
		{"bad magic", v.base, flip(good, 0), "bad magic"},
		{"unknown kind", v.base, hdr(func(h *delta.Header) { h.Kind = 9 }), "unknown"},
		{"wrong target hash", v.base, hdr(func(h *delta.Header) { h.Target[0] ^= 1 }), "SHA-256"},
		{"wrong size", v.base, hdr(func(h *delta.Header) { h.Size-- }), "corrupt"},
		{"huge size", v.base, hdr(func(h *delta.Header) { h.Size = 1 << 40 }), "more than"},
		{"full with base", v.base, hdr(func(h *delta.Header) { h.Kind = delta.Full }), "names a base"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := delta.Apply(c.base, c.patch)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (%d bytes), want an error with %q", err, len(out), c.want)
			}
			if c.name == "wrong base" && !errors.Is(err, delta.ErrWrongBase) {
				t.Fatal("wrong base is not ErrWrongBase")
			}
		})
	}
}

func TestParseHash(t *testing.T) {
	h := delta.Sum([]byte("x"))
	got, err := delta.ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHash(%s) = %v, %v", h, got, err)
	}
	for _, bad := range []string{"", "zz", h.String()[:63], h.String() + "00"} {
		if _, err := delta.ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

// FuzzApply feeds arbitrary patches to the decoder the agent runs on bytes from the network. It
// must never panic, never return a result other than the one the header announces (a corrupt
// payload that still decodes is refused by the final check alone), and never be talked into
// allocating more than the announced (bounded) size: a zstd frame may claim any content size
// and window, a segment table any lengths. Allowed: the result and a copy of it (a frame's
// decoder may grow its buffer once), and a fixed amount per byte of patch (each segment's frame
// brings a decoder of its own, ~17 KB, and takes at least 13 bytes).
func FuzzApply(f *testing.F) {
	base := bytes.Repeat([]byte("hotpod base binary "), 200)
	target := append(bytes.Clone(base[:1000]), []byte("edited")...)
	d, _ := delta.Encode(base, target, zstd.SpeedBetterCompression)
	full, _ := delta.Encode(nil, target, zstd.SpeedFastest)
	f.Add(d)
	f.Add(full)
	f.Add(delta.EncodeRaw(target))
	f.Add(d[:delta.HeaderLen])
	if seg, err := delta.EncodeSegmented(base, target, zstd.SpeedBetterCompression, 512, 256); err == nil {
		f.Add(seg)
	}
	// A raw patch with one byte of its body changed: only the final SHA-256 check refuses it.
	corrupt := delta.EncodeRaw(target)
	corrupt[len(corrupt)-1] ^= 1
	f.Add(corrupt)
	// A full patch announcing 100 bytes whose frame claims 256 MiB of content: a decoder that
	// trusts the frame allocates that before it finds the frame empty.
	lie := delta.Header{Kind: delta.Full, Target: delta.Sum(target[:100]), Size: 100}.Append(nil)
	lie = append(lie, 0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x00) // zstd magic; 8-byte content size, 1 KiB window
	lie = binary.LittleEndian.AppendUint64(lie, 256<<20)
	lie = append(lie, 0x01, 0x00, 0x00) // one empty raw block, the last
	f.Add(lie)
	// More seeds live in testdata/fuzz/FuzzApply.
	f.Fuzz(func(t *testing.T, patch []byte) {
		var announced uint64
		h, herr := delta.ParseHeader(patch)
		if herr == nil {
			announced = h.Size
		}
		if announced > 16<<20 {
			// Allowed (ParseHeader bounds it by MaxTarget), and the result's buffer is made
			// before anything is decoded: hundreds of megabytes per input would stall the
			// fuzzer. The same code runs on inputs that announce less.
			t.Skip("announces more than 16 MiB")
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := delta.Apply(base, patch)
		runtime.ReadMemStats(&after)
		if got, allowed := after.TotalAlloc-before.TotalAlloc, 2*announced+2048*uint64(len(patch))+1<<20; got > allowed {
			t.Fatalf("Apply allocated %d bytes for a %d-byte patch announcing %d (allowed %d); err %v", got, len(patch), announced, allowed, err)
		}
		if err != nil {
			return
		}
		if herr != nil {
			t.Fatalf("Apply accepted a patch whose header does not parse: %v", herr)
		}
		if delta.Sum(out) != h.Target || uint64(len(out)) != h.Size {
			t.Fatal("Apply returned a result that does not match its header")
		}
	})
}

// Segments: small ones here, so a small binary exercises the same code as a 70 MB one.
func TestSegmentedRoundTrip(t *testing.T) {
	v := buildVersions(t, "-s -w")
	for _, c := range []struct {
		name         string
		base, target []byte
	}{{"one-line", v.base, v.oneLine}, {"bigger", v.base, v.bigger}, {"shrunk", v.bigger, v.base}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := delta.EncodeSegmented(c.base, c.target, zstd.SpeedBetterCompression, 512<<10, 256<<10)
			if err != nil {
				t.Fatal(err)
			}
			got, err := delta.Apply(c.base, p)
			if err != nil || !bytes.Equal(got, c.target) {
				t.Fatalf("apply: %v", err)
			}
			whole, _ := delta.Encode(nil, c.target, zstd.SpeedFastest)
			if len(p) > len(whole)/2 {
				t.Fatalf("segmented delta %d bytes is not much smaller than the whole binary compressed (%d)", len(p), len(whole))
			}
			if _, err := delta.Apply(c.target, p); !errors.Is(err, delta.ErrWrongBase) {
				t.Fatalf("wrong base: %v", err)
			}
			// Every truncation is refused, never a wrong result.
			for _, cut := range []int{delta.HeaderLen + 1, len(p) / 2, len(p) - 1} {
				if _, err := delta.Apply(c.base, p[:cut]); err == nil {
					t.Fatalf("truncated to %d accepted", cut)
				}
			}
		})
	}
}

// ApplyStream decodes every kind of patch as a stream against a base read in place (a file, as
// the agent reads the running binary), refuses what Apply refuses, and tells a failing writer
// (a full disk) from a bad patch.
func TestApplyStream(t *testing.T) {
	v := buildVersions(t, "-s -w")
	baseFile, err := os.CreateTemp(t.TempDir(), "base")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := baseFile.Write(v.base); err != nil {
		t.Fatal(err)
	}
	fi, _ := baseFile.Stat()
	base := io.NewSectionReader(baseFile, 0, fi.Size())
	seg, err := delta.EncodeSegmented(v.base, v.bigger, zstd.SpeedBetterCompression, 512<<10, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	dlt, _ := delta.Encode(v.base, v.bigger, zstd.SpeedBetterCompression)
	full, _ := delta.Encode(nil, v.bigger, zstd.SpeedFastest)
	for name, p := range map[string][]byte{"raw": delta.EncodeRaw(v.bigger), "full": full, "delta": dlt, "segmented": seg} {
		t.Run(name, func(t *testing.T) {
			h, err := delta.ParseHeader(p)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := delta.ApplyStream(&out, h, bytes.NewReader(p[delta.HeaderLen:]), base, delta.Sum(v.base)); err != nil || !bytes.Equal(out.Bytes(), v.bigger) {
				t.Fatalf("ApplyStream: %v", err)
			}
			for _, cut := range []int{delta.HeaderLen, delta.HeaderLen + (len(p)-delta.HeaderLen)/2, len(p) - 1} {
				if err := delta.ApplyStream(io.Discard, h, bytes.NewReader(p[delta.HeaderLen:cut]), base, delta.Sum(v.base)); err == nil {
					t.Errorf("truncated to %d accepted", cut)
				}
			}
			if err := delta.ApplyStream(io.Discard, h, io.MultiReader(bytes.NewReader(p[delta.HeaderLen:]), strings.NewReader("x")), base, delta.Sum(v.base)); err == nil {
				t.Error("trailing byte accepted")
			}
			disk := errors.New("no space left on device")
			err = delta.ApplyStream(failingWriter{after: 1000, err: disk}, h, bytes.NewReader(p[delta.HeaderLen:]), base, delta.Sum(v.base))
			if !errors.Is(err, delta.ErrWrite) || !errors.Is(err, disk) {
				t.Fatalf("a failing writer gave %v, want ErrWrite wrapping it", err)
			}
		})
	}
}

// failingWriter fails once more than after bytes were written.
type failingWriter struct {
	after int
	err   error
}

func (w failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return w.after, w.err
	}
	return len(p), nil
}
