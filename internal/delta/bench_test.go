package delta

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// BenchmarkShip compares the ways to ship a rebuilt binary, on go-built binaries of the
// project's examples: hello (5.8 MB stripped, 8.4 MB with DWARF) and seedapp (badger, influxdb
// and a 50 MB embedded blob: 71 MB). Each is built as it is, after a one-line edit (the
// time.Unix(0, N) stamp `hotpod bench` rewrites) and after a bigger one (a new function and
// three new standard-library imports). Per binary, edit and method it reports the patch size,
// the encode time (hashes known, as the shipper has them), the apply time (base hash known and
// result verified, as the agent does it) and the modelled total (encode + transfer + apply) on a
// 1 Gbit/s link and on a 20 Mbit/s uplink with 30 ms RTT; `segmented` is 1 for a patch in
// segments (what Encode makes for every base).
//
// The methods: raw and full (zstd fastest) are the whole binary; delta-* is Encode at that
// level (delta-better is what hotpod sends); whole-better is the target compressed against the
// whole base as one raw dictionary (a Delta patch): what segments replaced, for large bases
// since 2026-11 and for every base since 2026-12-02. hack/bench-delta.sh runs it and writes the output, with the machine and the date,
// under docs/bench/; docs/delta.md's tables come from there.
//
//	go test -run '^$' -bench Ship -benchtime 3x ./internal/delta/
func BenchmarkShip(b *testing.B) {
	type method struct {
		name  string
		level zstd.EncoderLevel // 0: not zstd with a base
		whole bool
	}
	raw, full := method{name: "raw"}, method{name: "full"}
	better := method{"delta-better", zstd.SpeedBetterCompression, false}
	whole := method{"whole-better", zstd.SpeedBetterCompression, true}
	levels := []method{raw, full, {"delta-default", zstd.SpeedDefault, false}, better, {"delta-best", zstd.SpeedBestCompression, false}, whole}
	for _, c := range []struct {
		example, flags string
		methods        []method
	}{
		{"hello", "-s -w", levels},
		{"hello", "", levels},
		{"seedapp", "-s -w", []method{raw, full, better, whole}},
	} {
		v := buildExample(b, c.example, c.flags)
		label := "stripped"
		if c.flags == "" {
			label = "dwarf"
		}
		for _, edit := range []struct {
			name   string
			target []byte
		}{{"one-line", v.oneLine}, {"bigger", v.bigger}} {
			for _, m := range c.methods {
				b.Run(fmt.Sprintf("%s/%s/%s/%s", c.example, label, edit.name, m.name), func(b *testing.B) {
					benchShip(b, v.base, edit.target, m.name, m.level, m.whole)
				})
			}
		}
	}
}

func benchShip(b *testing.B, base, target []byte, method string, level zstd.EncoderLevel, whole bool) {
	baseSum, targetSum := Sum(base), Sum(target)
	encode := func() ([]byte, error) {
		switch {
		case method == "raw":
			return EncodeRawSum(target, targetSum), nil
		case method == "full":
			return EncodeKnown(nil, Hash{}, target, targetSum, zstd.SpeedFastest)
		case whole:
			frame, err := compress(base, target, level)
			h := Header{Kind: Delta, Base: baseSum, Target: targetSum, Size: uint64(len(target))}
			return append(h.Append(nil), frame...), err
		}
		return EncodeKnown(base, baseSum, target, targetSum, level)
	}
	var p []byte
	var err error
	t := time.Now()
	for range b.N {
		if p, err = encode(); err != nil {
			b.Fatal(err)
		}
	}
	enc := time.Since(t) / time.Duration(b.N)
	h, err := ParseHeader(p)
	if err != nil {
		b.Fatal(err)
	}
	t = time.Now()
	var got []byte
	if whole { // the agent applies no Delta patch of a base over MaxDeltaBase: decode the frame here
		got, err = decodeWhole(base, p[HeaderLen:], h)
	} else {
		got, err = Apply(base, p)
	}
	apply := time.Since(t)
	if err != nil || len(got) != len(target) {
		b.Fatalf("apply: %v", err)
	}
	transfer := func(bitsPerSec float64, rtt time.Duration) time.Duration {
		return rtt + time.Duration(float64(len(p))*8/bitsPerSec*float64(time.Second))
	}
	segmented := 0.0
	if h.Kind == Segmented {
		segmented = 1
	}
	b.ReportMetric(float64(len(p)), "patch-bytes")
	b.ReportMetric(float64(len(target)), "binary-bytes")
	b.ReportMetric(segmented, "segmented")
	b.ReportMetric(ms(enc), "encode-ms")
	b.ReportMetric(ms(apply), "apply-ms")
	b.ReportMetric(ms(enc+transfer(1e9, 0)+apply), "total-1gbit-ms")
	b.ReportMetric(ms(enc+transfer(20e6, 30*time.Millisecond)+apply), "total-20mbit-ms")
	b.ReportMetric(0, "ns/op") // the encode alone is encode-ms; ns/op would mix in the setup
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// example is a go-built example in three versions: as it is, after a one-line edit, after a
// bigger one.
type example struct{ base, oneLine, bigger []byte }

// buildExample copies examples/<name> (seedapp with its blob generated) to a temporary module
// and builds the three versions for linux with ldflags, as hotpod builds them.
func buildExample(b *testing.B, name, ldflags string) example {
	b.Helper()
	src := filepath.Join("..", "..", "examples", name)
	dir := b.TempDir()
	files := []string{"main.go"}
	if name == "seedapp" {
		files = append(files, "go.mod", "go.sum", "blob/blob.go", "gen/main.go")
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	run := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if name == "seedapp" {
		run("run", "./gen")
	} else if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.24\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		b.Fatal(err)
	}
	build := func(code string) []byte {
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(dir, "app")
		run("build", "-trimpath", "-ldflags", ldflags, "-o", out, ".")
		bin, err := os.ReadFile(out)
		if err != nil {
			b.Fatal(err)
		}
		return bin
	}
	s := string(orig)
	if !strings.Contains(s, "time.Unix(0, 0)") || !strings.Contains(s, "import (\n") {
		b.Fatalf("examples/%s/main.go has no time.Unix(0, 0) line or import block to edit", name)
	}
	oneLine := strings.Replace(s, "time.Unix(0, 0)", "time.Unix(0, 1764620000000000000)", 1)
	bigger := strings.Replace(oneLine, "import (\n", "import (\n\t\"crypto/sha256\"\n\t\"strings\"\n\t\"text/template\"\n", 1) + `
var extraOut = extra("hotpod")

func extra(s string) string {
	t := template.Must(template.New("x").Parse("{{.}} {{len .}}"))
	var b strings.Builder
	_ = t.Execute(&b, s)
	return fmt.Sprintf("%x %s", sha256.Sum256([]byte(s)), strings.ToUpper(b.String()))
}
`
	return example{base: build(s), oneLine: build(oneLine), bigger: build(bigger)}
}

// decodeWhole decodes one zstd frame made against the whole base as a raw dictionary, and checks
// the result against the header.
func decodeWhole(base, frame []byte, h Header) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(dictID, base), zstd.WithDecoderMaxWindow(windowFor(h.Size, len(base))),
		zstd.WithDecoderMaxMemory(h.Size+1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	got, err := dec.DecodeAll(frame, nil)
	if err != nil {
		return nil, err
	}
	return got, check(h, uint64(len(got)), Sum(got))
}
