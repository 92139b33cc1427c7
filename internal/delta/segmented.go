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

// A binary is encoded in segments, each compressed with the region of the base around the
// same relative position as its dictionary. zstd's fast encoders index a raw dictionary through
// fixed-size hash tables, so against a 70 MB base almost nothing is found (measured: 37 MB for a
// one-line edit of a 71 MB binary); a Go binary's sections move by kilobytes to a few hundred
// kilobytes between builds, so a few megabytes around the same spot hold nearly every match, and
// the segments encode in parallel. A segment found unchanged in that region (a large embedded
// asset, most of the data) is sent as a copy of the base: no frame, and no zstd on either side.
const (
	segmentSize   = 4 << 20
	segmentMargin = 2 << 20
)

// encodeSegmented writes the payload of a Segmented patch: the number of parts, then for each its
// target length, dictionary offset and length in the base, and frame length, then the frame. A
// frame length of 0 says the part is the dictionary itself (dictionary length = target length),
// copied verbatim.
func encodeSegmented(base, target []byte, level zstd.EncoderLevel, size, margin int) ([]byte, error) {
	type seg struct {
		parts []part
		err   error
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
				off := i * size
				segs[i].parts, segs[i].err = encodeSegment(base, target, off, min(off+size, len(target)), level, margin)
			}
		}()
	}
	for i := range segs {
		work <- i
	}
	close(work)
	wg.Wait()
	var parts []part
	for _, s := range segs {
		if s.err != nil {
			return nil, s.err
		}
		parts = append(parts, s.parts...)
	}
	out := binary.AppendUvarint(nil, uint64(len(parts)))
	for _, p := range parts {
		for _, v := range []int{p.tlen, p.doff, p.dlen, len(p.frame)} {
			out = binary.AppendUvarint(out, uint64(v))
		}
		out = append(out, p.frame...)
	}
	return out, nil
}

// part is one entry of a Segmented patch's table: tlen bytes of the target, from a frame
// compressed against base[doff:doff+dlen], or (no frame) that region copied.
type part struct {
	tlen, doff, dlen int
	frame            []byte
}

// encodeSegment encodes target[off:end]: whole as a copy when it is found unchanged in the base
// around the same relative position; else, when most of it is found in blocks, as copies with
// frames for the changed runs only, each against a small region of the base (a zstd encoder's
// setup costs in proportion to its dictionary: ~50 ms for the 8 MB around a segment); else as one
// frame against the region around it.
func encodeSegment(base, target []byte, off, end int, level zstd.EncoderLevel, margin int) ([]part, error) {
	t := target[off:end]
	// Where this part sat in the base, scaled for a binary that grew or shrank.
	at := int(int64(off) * int64(len(base)) / int64(max(len(target), 1)))
	doff := max(0, at-margin)
	dend := max(doff, min(len(base), at+len(t)+margin))
	if o, ok := findVerbatim(base[doff:dend], t); ok {
		return []part{{tlen: len(t), doff: doff + o, dlen: len(t)}}, nil
	}
	if parts, ok, err := encodeBlocks(base, t, off, at, level, margin); ok || err != nil {
		return parts, err
	}
	frame, err := compress(base[doff:dend], t, level)
	return []part{{tlen: len(t), doff: doff, dlen: dend - doff, frame: frame}}, err
}

// runLevel caps the zstd level of a changed run's frame. Its dictionary is small (±nearMargin),
// which the default level uses as well as "better" does, at a fraction of the setup: hello's
// one-line edit encoded in 7.6 ms to 629 B at the default level against 49 ms to 303 B at
// "better", both against ±512 KB (docs/bench/delta-2026-12-02.txt). A whole segment's frame,
// against ±2 MB and more, keeps the caller's level: there the default level finds little
// (docs/delta.md).
const runLevel = zstd.SpeedDefault

// nearMargin: a changed run's dictionary is its expected place in the base ± this. It was ±512 KB
// until 2026-12-02; ±128 KB halved hello's one-line patch (629 → 311 B: the default level's
// tables find more in a smaller dictionary) and encodes faster. A changed run's matches lie
// within kilobytes of its expected place once the last block's shift is known.
const (
	block      = 64 << 10  // the unit encodeBlocks finds unchanged
	nearMargin = 128 << 10 // a changed run's dictionary: its expected place in the base ± this
	maxSearch  = 3         // searches for a block's place per segment, beyond following the last one
)

// blockRun is a run of blocks t[start:end] that encodeBlocks sends one way: copied from the base
// at from, or (from -1) changed.
type blockRun struct {
	start, end, from int
}

// continuedBy says whether the next block, found in the base at from (-1: changed), extends r:
// changed after changed, or a copy that continues where r's ends in the base.
func (r blockRun) continuedBy(from int) bool {
	if r.from < 0 || from < 0 {
		return r.from < 0 && from < 0
	}
	return r.from+r.end-r.start == from
}

// encodeBlocks encodes t, which starts at off in the target and around at in the base, as
// copies of the blocks found unchanged and frames for the runs between them. It gives up (ok
// false) when more than half of t changed: then one frame against the wide region does better.
func encodeBlocks(base, t []byte, off, at int, level zstd.EncoderLevel, margin int) (parts []part, ok bool, err error) {
	shift, known := 0, false // base position - target position of the last block found
	searches, misses, changed := 0, 0, 0
	var runs []blockRun
	for bs := 0; bs < len(t); bs += block {
		b := t[bs:min(bs+block, len(t))]
		from := -1
		if c := off + bs + shift; known && c >= 0 && c+len(b) <= len(base) && bytes.Equal(base[c:c+len(b)], b) {
			from = c
		} else if (!known || misses >= 1) && searches < maxSearch {
			// No place yet, or the last place failed twice in a row: the code may have moved.
			searches++
			lo := max(0, at+bs-margin)
			hi := max(lo, min(len(base), at+bs+len(b)+margin))
			if o, found := findVerbatim(base[lo:hi], b); found {
				from, shift, known = lo+o, lo+o-(off+bs), true
			}
		}
		if from < 0 {
			misses++
			changed += len(b)
			if changed*2 > len(t) {
				return nil, false, nil
			}
		} else {
			misses = 0
		}
		if n := len(runs); n > 0 && runs[n-1].continuedBy(from) {
			runs[n-1].end = bs + len(b)
			continue
		}
		runs = append(runs, blockRun{bs, bs + len(b), from})
	}
	for _, r := range runs {
		if r.from >= 0 {
			parts = append(parts, part{tlen: r.end - r.start, doff: r.from, dlen: r.end - r.start})
			continue
		}
		exp := at + r.start
		if known {
			exp = off + r.start + shift
		}
		doff := min(len(base), max(0, exp-nearMargin))
		dend := max(doff, min(len(base), exp+(r.end-r.start)+nearMargin))
		frame, err := compress(base[doff:dend], t[r.start:r.end], min(level, runLevel))
		if err != nil {
			return nil, false, err
		}
		parts = append(parts, part{tlen: r.end - r.start, doff: doff, dlen: dend - doff, frame: frame})
	}
	return parts, true, nil
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
	// Single segment: the frame's window is its content. Left to choose, the encoder gives an
	// input under 1 KB a 1 KB window while its matches reach into a dictionary far larger,
	// which the decoder refuses ("window size exceeded"): a small changed run at a binary's end
	// would be a corrupt patch.
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(int(windowFor(uint64(len(target)), len(dict)))), zstd.WithSingleSegment(true)}
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
