// Package ship decides how a new binary travels to an agent and makes the patch. The choice is
// made per link from measurements: on loopback or a local cluster's port-forward the raw binary
// arrives sooner than a delta can be computed; over a slow uplink a zstd delta against the binary
// the pod runs wins by orders of magnitude (docs/delta.md has the numbers).
package ship

import (
	"fmt"
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

// Remember records a binary as a possible base and returns its hash.
func (s *Shipper) Remember(bin []byte) delta.Hash {
	h := delta.Sum(bin)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.binaries[h]; ok {
		return h
	}
	s.binaries[h] = bin
	s.order = append(s.order, h)
	for len(s.order) > keepBinaries {
		old := s.order[0]
		s.order = s.order[1:]
		delete(s.binaries, old)
		for k := range s.patches {
			if k.base == old || k.target == old {
				delete(s.patches, k)
			}
		}
	}
	return h
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
	s.mu.Unlock()
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
