package ship_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/ship"
)

func binaries() (old, cur []byte) {
	old = bytes.Repeat([]byte("0123456789abcdef some binary content "), 200000) // ~7 MB
	cur = bytes.Clone(old)
	copy(cur[1000:], "an edit")
	return old, cur
}

func TestChooseFollowsTheLink(t *testing.T) {
	old, cur := binaries()
	s := ship.New(ship.Auto)
	oh, ch := s.Remember(old), s.Remember(cur)

	fast := &ship.Link{}
	fast.Observe(100<<20, 50*time.Millisecond) // 2 GB/s: loopback
	if k := s.Choose(oh, ch, fast); k != delta.Raw {
		t.Errorf("fast link: %v, want raw", k)
	}
	slow := &ship.Link{}
	slow.Observe(10<<20, 4*time.Second) // 2.6 MB/s: a 20 Mbit/s uplink
	if k := s.Choose(oh, ch, slow); k != delta.Delta {
		t.Errorf("slow link with a known base: %v, want delta", k)
	}
	if k := s.Choose(delta.Hash{}, ch, slow); k != delta.Full {
		t.Errorf("slow link, unknown base: %v, want full", k)
	}
	if k := s.Choose(delta.Sum([]byte("never seen")), ch, slow); k != delta.Full {
		t.Errorf("slow link, base not remembered: %v, want full", k)
	}
}

// Before any transfer was measured, the round trip says whether the link is local: the first
// binary (no base known) goes raw to a local cluster and compressed to a remote one. With a base,
// a delta (segments copied, the changed ones compressed) beats raw on either.
func TestRoundTripDecidesBeforeAnyTransfer(t *testing.T) {
	old, cur := binaries()
	s := ship.New(ship.Auto)
	oh, ch := s.Remember(old), s.Remember(cur)
	near, far := &ship.Link{}, &ship.Link{}
	near.ObserveRTT(300 * time.Microsecond)
	far.ObserveRTT(35 * time.Millisecond)
	for _, c := range []struct {
		name string
		base delta.Hash
		link *ship.Link
		want delta.Kind
	}{
		{"short round trip, no base", delta.Hash{}, near, delta.Raw},
		{"long round trip, no base", delta.Hash{}, far, delta.Full},
		{"short round trip, a base", oh, near, delta.Delta},
		{"long round trip, a base", oh, far, delta.Delta},
	} {
		if k := s.Choose(c.base, ch, c.link); k != c.want {
			t.Errorf("%s: %v, want %v", c.name, k, c.want)
		}
	}
	far.Observe(100<<20, 50*time.Millisecond) // a measured transfer overrides the guess
	if k := s.Choose(delta.Hash{}, ch, far); k != delta.Raw {
		t.Errorf("measured fast link: %v, want raw", k)
	}
}

// A large binary's delta is mostly copies of unchanged segments: cheaper than sending it whole
// even over a local cluster's port-forward, until measurements say otherwise.
func TestLargeBinaryGoesAsDeltaOnALocalLink(t *testing.T) {
	old := bytes.Repeat([]byte("0123456789abcdef some binary content "), 600000) // ~22 MB
	cur := bytes.Clone(old)
	copy(cur[1000:], "an edit")
	s := ship.New(ship.Auto)
	oh, ch := s.Remember(old), s.Remember(cur)
	near := &ship.Link{}
	near.ObserveRTT(300 * time.Microsecond)
	if k := s.Choose(oh, ch, near); k != delta.Delta {
		t.Errorf("22 MB binary, local link: %v, want delta", k)
	}
	loopback := &ship.Link{}
	loopback.Observe(100<<20, 20*time.Millisecond) // 5 GB/s
	if k := s.Choose(oh, ch, loopback); k != delta.Raw {
		t.Errorf("22 MB binary, 5 GB/s link: %v, want raw", k)
	}
}

func TestForcedMethods(t *testing.T) {
	old, cur := binaries()
	for m, want := range map[ship.Method][2]delta.Kind{
		ship.Raw:   {delta.Raw, delta.Raw},
		ship.Full:  {delta.Full, delta.Full},
		ship.Delta: {delta.Delta, delta.Full}, // a delta needs a known base
	} {
		s := ship.New(m)
		oh, ch := s.Remember(old), s.Remember(cur)
		link := &ship.Link{}
		if got := [2]delta.Kind{s.Choose(oh, ch, link), s.Choose(delta.Hash{}, ch, link)}; got != want {
			t.Errorf("%s: got %v, want %v", m, got, want)
		}
	}
}

func TestPatchIsSharedAndApplies(t *testing.T) {
	old, cur := binaries()
	s := ship.New(ship.Delta)
	oh, ch := s.Remember(old), s.Remember(cur)
	p1, err := s.Patch(delta.Delta, oh, ch)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := s.Patch(delta.Delta, oh, ch)
	if &p1[0] != &p2[0] {
		t.Error("the same patch was computed twice")
	}
	got, err := delta.Apply(old, p1)
	if err != nil || !bytes.Equal(got, cur) {
		t.Fatalf("patch does not apply: %v", err)
	}
	if len(p1) > len(cur)/100 {
		t.Errorf("delta of a 7-byte edit is %d bytes", len(p1))
	}
}

// The last four builds are kept, as targets and as delta bases (a pod may lag a build or two);
// the one before them is forgotten.
func TestKeepsTheLastFourBinaries(t *testing.T) {
	s := ship.New(ship.Delta)
	var builds []delta.Hash
	for i := range 5 {
		builds = append(builds, s.Remember([]byte(fmt.Sprintf("build %d", i))))
	}
	newest := builds[len(builds)-1]
	for i, h := range builds {
		_, err := s.Patch(delta.Raw, delta.Hash{}, h)
		asBase := s.Choose(h, newest, &ship.Link{})
		if i == 0 {
			if err == nil || asBase != delta.Full {
				t.Errorf("build 0, older than the last four, is still kept (patch error %v, as a base: %v)", err, asBase)
			}
			continue
		}
		if err != nil || asBase != delta.Delta {
			t.Errorf("build %d, one of the last four, is forgotten (patch error %v, as a base: %v)", i, err, asBase)
		}
	}
}

func TestParseMethod(t *testing.T) {
	for _, ok := range []string{"auto", "delta", "full", "raw"} {
		if _, err := ship.ParseMethod(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ship.ParseMethod("rsync"); err == nil {
		t.Error("rsync accepted")
	}
}

// Load reads each build into the memory of the oldest build kept, once the shipper keeps as
// many as it may, but never into memory a patch still reads; what it reads is the file.
func TestLoadReusesForgottenBuilds(t *testing.T) {
	dir := t.TempDir()
	const size = 4 << 20
	s := ship.New(ship.Auto)
	content := map[delta.Hash][]byte{}
	load := func(i int) (delta.Hash, uint64) {
		b := bytes.Repeat([]byte{byte(i)}, size)
		copy(b, fmt.Sprintf("build %d", i))
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		h, n, err := s.Load(p)
		runtime.ReadMemStats(&after)
		if err != nil || n != size || h != delta.Sum(b) {
			t.Fatalf("build %d: %v, %d bytes, hash %.12s, want %.12s", i, err, n, h, delta.Sum(b))
		}
		content[h] = b
		return h, after.TotalAlloc - before.TotalAlloc
	}
	fresh := func(alloc uint64) bool { return alloc >= size }
	var hs []delta.Hash
	for i := range 4 { // as many as the shipper keeps: each needs new memory
		h, alloc := load(i)
		hs = append(hs, h)
		if !fresh(alloc) {
			t.Fatalf("build %d allocated %d bytes, want new memory for it", i, alloc)
		}
	}
	if _, alloc := load(4); fresh(alloc) {
		t.Fatalf("build 4 allocated %d bytes, want build 0's memory", alloc)
	}
	// Build 1, the oldest kept now, is read by a patch: build 5 gets new memory, and build 1
	// stays intact while it is read.
	release := s.Hold(hs[1])
	if _, alloc := load(5); !fresh(alloc) {
		t.Fatalf("build 5 allocated %d bytes: it took the memory of a build a patch reads", alloc)
	}
	if !bytes.Equal(s.Bytes(hs[1]), content[hs[1]]) {
		t.Fatal("a forgotten build that a patch reads changed")
	}
	release()
	if _, alloc := load(6); fresh(alloc) {
		t.Fatalf("build 6 allocated %d bytes, want build 1's memory, free once the patch was done", alloc)
	}
	// The same build again is kept once; the memory it was read into is used for the next.
	if _, alloc := load(6); fresh(alloc) {
		t.Fatalf("build 6 again allocated %d bytes", alloc)
	}
	if _, alloc := load(7); fresh(alloc) {
		t.Fatalf("build 7 allocated %d bytes, want the memory build 6 was read into again", alloc)
	}
	for _, h := range []delta.Hash{hs[1], hs[2]} {
		if s.Bytes(h) != nil {
			t.Errorf("build %.12s still held", h)
		}
	}
}
