package delta_test

import (
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/delta"
	"github.com/klauspost/compress/zstd"
)

// BenchmarkShip compares the ways to ship a rebuilt binary on real Go binaries: per edit and
// method it reports the patch size and the modelled total (encode + transfer + apply) on a
// 1 Gbit/s link and on a 20 Mbit/s uplink with 30 ms RTT. docs/delta.md records a run.
//
//	go test -run '^$' -bench Ship -benchtime 5x ./internal/delta/
func BenchmarkShip(b *testing.B) {
	for _, flags := range []string{"-s -w", ""} {
		v := buildVersions(b, flags)
		label := "stripped"
		if flags == "" {
			label = "dwarf"
		}
		for _, edit := range []struct {
			name   string
			target []byte
		}{{"one-line", v.oneLine}, {"bigger", v.bigger}} {
			for _, m := range []struct {
				name   string
				encode func() ([]byte, error)
			}{
				{"raw", func() ([]byte, error) { return delta.EncodeRaw(edit.target), nil }},
				{"full-fastest", func() ([]byte, error) { return delta.Encode(nil, edit.target, zstd.SpeedFastest) }},
				{"delta-default", func() ([]byte, error) { return delta.Encode(v.base, edit.target, zstd.SpeedDefault) }},
				{"delta-better", func() ([]byte, error) { return delta.Encode(v.base, edit.target, zstd.SpeedBetterCompression) }},
				{"delta-best", func() ([]byte, error) { return delta.Encode(v.base, edit.target, zstd.SpeedBestCompression) }},
			} {
				b.Run(label+"/"+edit.name+"/"+m.name, func(b *testing.B) {
					var p []byte
					var err error
					t := time.Now()
					for range b.N {
						if p, err = m.encode(); err != nil {
							b.Fatal(err)
						}
					}
					enc := time.Since(t) / time.Duration(b.N)
					t = time.Now()
					if _, err := delta.Apply(v.base, p); err != nil {
						b.Fatal(err)
					}
					apply := time.Since(t)
					transfer := func(bitsPerSec float64, rtt time.Duration) time.Duration {
						return rtt + time.Duration(float64(len(p))*8/bitsPerSec*float64(time.Second))
					}
					b.ReportMetric(float64(len(p)), "patch-bytes")
					b.ReportMetric(float64(len(edit.target)), "binary-bytes")
					b.ReportMetric(ms(enc), "encode-ms")
					b.ReportMetric(ms(apply), "apply-ms")
					b.ReportMetric(ms(enc+transfer(1e9, 0)+apply), "total-1gbit-ms")
					b.ReportMetric(ms(enc+transfer(20e6, 30*time.Millisecond)+apply), "total-20mbit-ms")
				})
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
