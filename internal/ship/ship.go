// Package ship decides how a new binary travels to an agent and makes the patch. The choice is
// made per link from measurements: on loopback or a local cluster's port-forward the raw binary
// arrives sooner than a delta can be computed; over a slow uplink a zstd delta against the binary
// the pod runs wins by orders of magnitude (docs/delta.md has the numbers).
package ship

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hotpod/hotpod/internal/delta"
	"github.com/klauspost/compress/zstd"
)

// Method is how binaries are shipped.
type Method string

const (
	Auto  Method = "auto"  // the fastest of the three by the link's measured throughput
	Delta Method = "delta" // zstd with the pod's binary as dictionary (full when the base is unknown)
	Full  Method = "full"  // the whole binary, zstd-compressed
	Raw   Method = "raw"   // the whole binary as it is
)

// ParseMethod reads a --ship value.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case Auto, Delta, Full, Raw:
		return m, nil
	}
	return "", fmt.Errorf("--ship %q: want auto, delta, full or raw", s)
}

// Link tracks the measured throughput to one agent.
type Link struct {
	mu         sync.Mutex
	throughput float64 // bytes per second; 0 until measured
	rtt        time.Duration
}

// ObserveRTT records a round trip to the agent (a status call). Before any transfer was
// measured, a long round trip says the cluster is remote: the first binary then goes as a delta
// instead of whole over what is likely a slow uplink.
func (l *Link) ObserveRTT(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rtt == 0 || d < l.rtt {
		l.rtt = d
	}
}

// Observe records that n bytes took d to arrive (transfer only: the agent's own work excluded).
func (l *Link) Observe(n int, d time.Duration) {
	if n < 64<<10 || d <= 0 {
		return // too small to say anything about bandwidth
	}
	bps := float64(n) / d.Seconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.throughput == 0 {
		l.throughput = bps
	} else {
		l.throughput = 0.5*l.throughput + 0.5*bps
	}
}

// Throughput returns the measured bytes per second, or an estimate before the first transfer:
// a local cluster's port-forward when the round trip is short, a remote uplink when it is long.
func (l *Link) Throughput() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.throughput > 0:
		return l.throughput
	case l.rtt > remoteRTT:
		return assumedRemote
	}
	return assumedLocal
}

const (
	assumedLocal  = 100e6 // bytes/s: a local cluster's port-forward
	assumedRemote = 2.5e6 // bytes/s: a 20 Mbit/s uplink
	// remoteRTT separates a cluster on this machine or LAN from a remote one.
	remoteRTT = 10 * time.Millisecond
)

// cost is a running estimate of one encoding: how fast it runs and how much it keeps.
type cost struct {
	speed float64 // bytes of target per second
	ratio float64 // patch size / target size
}

func (c *cost) observe(target, patch int, d time.Duration) {
	if target == 0 || d <= 0 {
		return
	}
	c.speed = 0.5*c.speed + 0.5*float64(target)/d.Seconds()
	c.ratio = 0.5*c.ratio + 0.5*float64(patch)/float64(target)
}

// Shipper makes patches. Replicas that run the same base share one patch.
type Shipper struct {
	Method Method

	mu       sync.Mutex
	binaries map[delta.Hash][]byte // recent builds, the bases of future deltas
	order    []delta.Hash
	patches  map[patchKey]*patchEntry
	costs    map[delta.Kind]*cost
	// busy counts the patches being made from each binary: a forgotten binary's memory is
	// used again only once none reads it any more; forgotten holds those still read.
	busy      map[delta.Hash]int
	forgotten map[delta.Hash][]byte
	// spare is memory that Load may fill: a forgotten build's, once no patch reads it.
	spare []byte
}

type patchKey struct {
	base, target delta.Hash
	kind         delta.Kind
}

type patchEntry struct {
	once  sync.Once
	patch []byte
	err   error
}

// keepBinaries is how many builds are kept as possible bases: pods lag at most a build or two.
const keepBinaries = 4

// New returns a Shipper using m.
func New(m Method) *Shipper {
	return &Shipper{Method: m, binaries: map[delta.Hash][]byte{}, patches: map[patchKey]*patchEntry{},
		busy: map[delta.Hash]int{}, forgotten: map[delta.Hash][]byte{},
		costs: map[delta.Kind]*cost{
			// Starting points measured on this project's machine (docs/delta.md). A delta is
			// encoded in segments, and what is found unchanged (an embedded asset, most data,
			// most 64 KB blocks of code after a small edit) is copied without zstd: a one-line
			// edit of the 71 MB seedapp encodes in ~25 ms to 519 B, of the 5.8 MB hello in
			// ~15 ms to 303 B; an edit that moves code at 50–250 MB/s to 2–20% of the binary.
			delta.Delta: {speed: 300e6, ratio: 0.01},
			delta.Full:  {speed: 100e6, ratio: 0.45},
		}}
}

// Remember records a binary as a possible base and returns its hash. The shipper owns bin from
// then on: once it forgets it, Load may fill its memory with another build.
func (s *Shipper) Remember(bin []byte) delta.Hash {
	h := delta.Sum(bin)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rememberLocked(h, bin)
	return h
}

// Load reads the build at path, remembers it and returns its hash and size. It reads into the
// memory of the oldest build the shipper keeps (forgotten now rather than once this one is
// kept) when no patch reads it: memory fresh from the kernel can cost far more than the read.
// On this project's VM, reading 71 MB into fresh memory took 250–530 ms and hashing it there
// 166 ms (every page faulted in through the hypervisor), against 14 ms and 47 ms in memory
// used before; mapping the file instead took 2 ms but hashing and encoding from the mapping
// ran 1.7× slower than from the heap.
func (s *Shipper) Load(path string) (delta.Hash, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return delta.Hash{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return delta.Hash{}, 0, err
	}
	size := int(fi.Size())
	buf := s.memory(size)
	// Hashed as it is read, a megabyte at a time, while each is still in the CPU's cache.
	sum := sha256.New()
	for off := 0; off < size; off += 1 << 20 {
		part := buf[off:min(off+1<<20, size)]
		if _, err := io.ReadFull(f, part); err != nil {
			s.mu.Lock()
			s.spareLocked(buf)
			s.mu.Unlock()
			return delta.Hash{}, 0, fmt.Errorf("read %s: %w", path, err)
		}
		sum.Write(part)
	}
	h := delta.Hash(sum.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rememberLocked(h, buf) {
		s.spareLocked(buf) // the same build again: the kept copy serves
	}
	return h, size, nil
}

// memory returns size bytes for Load to fill: the spare, or the oldest kept build's when the
// shipper keeps as many as it may and no patch reads that one, or new memory.
func (s *Shipper) memory(size int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(s.spare) >= size {
		b := s.spare[:size]
		s.spare = nil
		return b
	}
	if len(s.order) >= keepBinaries {
		if old := s.order[0]; s.busy[old] == 0 && cap(s.binaries[old]) >= size {
			return s.forgetLocked(old)[:size]
		}
	}
	return make([]byte, size)
}

// spareLocked keeps b as the spare when it is larger than the one kept.
func (s *Shipper) spareLocked(b []byte) {
	if cap(b) > cap(s.spare) {
		s.spare = b[:cap(b)]
	}
}

// rememberLocked keeps bin under h unless it is known already (it reports whether it kept bin),
// and forgets the oldest builds beyond keepBinaries.
func (s *Shipper) rememberLocked(h delta.Hash, bin []byte) bool {
	if _, ok := s.binaries[h]; ok {
		return false
	}
	kept := true
	if old, ok := s.forgotten[h]; ok { // forgotten while a patch reads it, and built again
		delete(s.forgotten, h)
		bin, kept = old, false
	}
	s.binaries[h] = bin
	s.order = append(s.order, h)
	for len(s.order) > keepBinaries {
		s.spareLocked(s.forgetLocked(s.order[0])) // nil while a patch reads it: a no-op
	}
	return kept
}

// forgetLocked forgets binary h, kept until now, and its patches. It returns the binary's memory
// when no patch reads it; else nil, and the memory becomes the spare once none does.
func (s *Shipper) forgetLocked(h delta.Hash) []byte {
	s.order = slices.DeleteFunc(s.order, func(o delta.Hash) bool { return o == h })
	free := s.binaries[h]
	if s.busy[h] > 0 {
		s.forgotten[h], free = free, nil
	}
	delete(s.binaries, h)
	for k := range s.patches {
		if k.base == h || k.target == h {
			delete(s.patches, k)
		}
	}
	return free
}

// holdLocked marks the binaries hs as read by a patch being made; the function it returns
// releases them.
func (s *Shipper) holdLocked(hs ...delta.Hash) func() {
	for _, h := range hs {
		s.busy[h]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, h := range hs {
			if s.busy[h]--; s.busy[h] > 0 {
				continue
			}
			delete(s.busy, h)
			if b, ok := s.forgotten[h]; ok {
				delete(s.forgotten, h)
				s.spareLocked(b)
			}
		}
	}
}

// Choose picks the kind of patch for sending target to an agent that runs base over link.
func (s *Shipper) Choose(base, target delta.Hash, link *Link) delta.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, haveBase := s.binaries[base]
	haveBase = haveBase && !base.IsZero()
	switch s.Method {
	case Raw:
		return delta.Raw
	case Full:
		return delta.Full
	case Delta:
		if haveBase {
			return delta.Delta
		}
		return delta.Full
	}
	size := float64(len(s.binaries[target]))
	tp := link.Throughput()
	best, bestT := delta.Raw, size/tp
	kinds := []delta.Kind{delta.Full}
	if haveBase {
		kinds = append(kinds, delta.Delta)
	}
	for _, k := range kinds {
		c := s.costs[k]
		if t := size/c.speed + c.ratio*size/tp; t < bestT {
			best, bestT = k, t
		}
	}
	return best
}

// Patch returns the patch of kind k from base to target, computing it once for all agents.
func (s *Shipper) Patch(k delta.Kind, base, target delta.Hash) ([]byte, error) {
	s.mu.Lock()
	tb, ok := s.binaries[target]
	bb := s.binaries[base]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("ship: binary %.12s is no longer known", target)
	}
	if k != delta.Delta {
		base = delta.Hash{}
	}
	key := patchKey{base, target, k}
	e, ok := s.patches[key]
	if !ok {
		e = &patchEntry{}
		s.patches[key] = e
	}
	release := s.holdLocked(base, target)
	s.mu.Unlock()
	defer release()
	e.once.Do(func() {
		t := time.Now()
		switch k {
		case delta.Raw:
			e.patch = delta.EncodeRawSum(tb, target)
			return
		case delta.Full:
			e.patch, e.err = delta.EncodeKnown(nil, delta.Hash{}, tb, target, zstd.SpeedFastest)
		case delta.Delta:
			// The faster zstd levels of this library do not reach far into a large raw
			// dictionary; "better" does (docs/delta.md).
			e.patch, e.err = delta.EncodeKnown(bb, base, tb, target, zstd.SpeedBetterCompression)
		}
		if e.err == nil {
			s.mu.Lock()
			s.costs[k].observe(len(tb), len(e.patch), time.Since(t))
			s.mu.Unlock()
		}
	})
	return e.patch, e.err
}
