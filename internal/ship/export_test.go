package ship

import "github.com/hotpod/hotpod/internal/delta"

// Hold marks binaries as read by a patch being made, as Patch does while it encodes.
func (s *Shipper) Hold(hs ...delta.Hash) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(hs...)
}

// Bytes is the binary h as the shipper holds it, kept or forgotten but still read.
func (s *Shipper) Bytes(h delta.Hash) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.binaries[h]; ok {
		return b
	}
	return s.forgotten[h]
}
