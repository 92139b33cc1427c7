package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A large binary is encoded in segments, each compressed with the region of the base around the
// same relative position as its dictionary. zstd's fast encoders index a raw dictionary through
// fixed-size hash tables, so against a 70 MB base almost nothing is found (measured: 37 MB for a
// one-line edit of a 71 MB binary); a Go binary's sections move by kilobytes to a few hundred
// kilobytes between builds, so a few megabytes around the same spot hold nearly every match, and
// the segments encode in parallel. A segment found unchanged in that region (a large embedded
// asset, most of the data) is sent as a copy of the base: no frame, and no zstd on either side.
const (
	segmentSize    = 4 << 20
	segmentMargin  = 2 << 20
	SegmentedAbove = 8 << 20 // bases larger than this are encoded in segments
)

// encodeSegmented writes the payload of a Segmented patch: the number of segments, then for each
// its target length, dictionary offset and length in the base, and frame length, then the frame.
// A frame length of 0 says the segment is the dictionary itself (dictionary length = target
// length), copied verbatim.
func encodeSegmented(base, target []byte, level zstd.EncoderLevel, size, margin int) ([]byte, error) {
	type seg struct {
		tlen, doff, dlen int
		frame            []byte
		err              error
	}
	n := (len(target) + size - 1) / size
	if n == 0 {
		n = 1
	}
	segs := make([]seg, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s := &segs[i]
				off := i * size
				t := target[off:min(off+size, len(target))]
				// Where this part sat in the base, scaled for a binary that grew or shrank.
				at := int(int64(off) * int64(len(base)) / int64(max(len(target), 1)))
				s.doff = max(0, at-margin)
				end := min(len(base), at+len(t)+margin)
				s.dlen = max(0, end-s.doff)
				s.tlen = len(t)
				if o, ok := findVerbatim(base[s.doff:s.doff+s.dlen], t); ok {
					s.doff, s.dlen = s.doff+o, len(t)
					continue
				}
				s.frame, s.err = compress(base[s.doff:s.doff+s.dlen], t, level)
			}
		}()
	}
	for i := range segs {
		work <- i
	}
	close(work)
	wg.Wait()
	out := binary.AppendUvarint(nil, uint64(n))
	for _, s := range segs {
		if s.err != nil {
			return nil, s.err
		}
		for _, v := range []int{s.tlen, s.doff, s.dlen, len(s.frame)} {
			out = binary.AppendUvarint(out, uint64(v))
		}
		out = append(out, s.frame...)
	}
	return out, nil
}

// findVerbatim returns where t occurs whole in region, if it does: a short probe from its start
// is searched (bytes.Index is vectorised for needles this short), and each hit checked in full.
func findVerbatim(region, t []byte) (int, bool) {
	const probe, maxHits = 32, 64
	if len(t) < probe {
		return 0, false
	}
	at := 0
	for range maxHits {
		i := bytes.Index(region[at:], t[:probe])
		if i < 0 {
			return 0, false
		}
		at += i
		if len(region)-at >= len(t) && bytes.Equal(region[at:at+len(t)], t) {
			return at, true
		}
		at++
	}
	return 0, false
}

func compress(dict, target []byte, level zstd.EncoderLevel) ([]byte, error) {
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(int(windowFor(uint64(len(target)), len(dict))))}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithEncoderDictRaw(dictID, dict))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(target, nil), nil
}

var errSegments = errors.New("corrupt patch: bad segment table")

// applySegmented decodes a Segmented payload against base into a buffer of size bytes.
func applySegmented(base, payload []byte, size uint64) ([]byte, error) {
	n, k := binary.Uvarint(payload)
	if k <= 0 || n == 0 || n > size+1 {
		return nil, errSegments
	}
	payload = payload[k:]
	out := make([]byte, 0, size)
	for i := uint64(0); i < n; i++ {
		var v [4]uint64
		for j := range v {
			x, k := binary.Uvarint(payload)
			if k <= 0 {
				return nil, errSegments
			}
			v[j], payload = x, payload[k:]
		}
		tlen, doff, dlen, flen := v[0], v[1], v[2], v[3]
		if doff > uint64(len(base)) || dlen > uint64(len(base))-doff || flen > uint64(len(payload)) ||
			tlen > size-uint64(len(out)) {
			return nil, errSegments
		}
		if flen == 0 {
			if dlen != tlen || tlen == 0 {
				return nil, errSegments
			}
			out = append(out, base[doff:doff+dlen]...)
			continue
		}
		opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(windowFor(tlen, int(dlen))),
			zstd.WithDecoderMaxMemory(size + 1)} // counts what out already holds
		if dlen > 0 {
			opts = append(opts, zstd.WithDecoderDictRaw(dictID, base[doff:doff+dlen]))
		}
		dec, err := zstd.NewReader(nil, opts...)
		if err != nil {
			return nil, err
		}
		before := len(out)
		out, err = dec.DecodeAll(payload[:flen], out)
		dec.Close()
		if err != nil {
			return nil, fmt.Errorf("corrupt patch: segment %d: %w", i, err)
		}
		if uint64(len(out)-before) != tlen {
			return nil, fmt.Errorf("corrupt patch: segment %d decoded to %d bytes, table says %d", i, len(out)-before, tlen)
		}
		payload = payload[flen:]
	}
	if len(payload) != 0 {
		return nil, errSegments
	}
	return out, nil
}
