package build_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/build"
)

// BenchmarkQuickEdit times the bench's edit (main's time.Unix(0, N) line) of hello and
// drainapp built three ways, interleaved, one of each per round: hotpod's build (plain: the
// Builder's go build with hotpod's default flags), Quick's quick path (quick), and Quick with no
// state (capture: go env, go list and go build -x -work, what Quick pays when it must fall
// back). It reports each kind's median in ms and the median of each round's plain less quick
// (saved-ms), logs min and max, the load average, and checks
// that every quick round took the quick path and that the last one is go build's binary.
//
//	go test -run '^$' -bench QuickEdit -benchtime 7x ./internal/build/
func BenchmarkQuickEdit(b *testing.B) {
	root, err := filepath.Abs("../../examples")
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []struct {
		name  string
		files map[string]string // name in the module → path under examples/, or "=content"
	}{
		{"hello", map[string]string{"main.go": "hello/main.go", "go.mod": "=module example.com/hello\n\ngo 1.24\n"}},
		{"drainapp", map[string]string{"main.go": "drainapp/main.go", "go.mod": "drainapp/go.mod", "go.sum": "drainapp/go.sum"}},
	} {
		b.Run(w.name, func(b *testing.B) {
			dir := b.TempDir()
			for name, from := range w.files {
				body := []byte(strings.TrimPrefix(from, "="))
				if !strings.HasPrefix(from, "=") {
					if body, err = os.ReadFile(filepath.Join(root, from)); err != nil {
						b.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			line := regexp.MustCompile(`time\.Unix\(0, [0-9]+\)`)
			edit := func() {
				p := filepath.Join(dir, "main.go")
				src, err := os.ReadFile(p)
				if err != nil {
					b.Fatal(err)
				}
				src = line.ReplaceAll(src, fmt.Appendf(nil, "time.Unix(0, %d)", time.Now().UnixNano()))
				if err := os.WriteFile(p, src, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			opts := build.Options{LDFlags: "-s -w"}
			plain := &build.Builder{Dir: dir, Package: ".", Options: opts}
			q := build.NewQuick(&build.Builder{Dir: dir, Package: ".", Options: opts})
			b.Cleanup(func() { q.Close() })
			outs := b.TempDir()
			n := 0
			out := func() string { n++; return filepath.Join(outs, fmt.Sprint(n)) }
			// Warm the build cache, and give Quick its state.
			for _, bld := range []interface {
				Build(ctx context.Context, out string) (build.Result, error)
			}{plain, q} {
				edit()
				if _, err := bld.Build(b.Context(), out()); err != nil {
					b.Fatal(err)
				}
			}
			load := func() string {
				l, _ := os.ReadFile("/proc/loadavg")
				return strings.Join(strings.Fields(string(l))[:3], " ")
			}
			b.Logf("start %s UTC, load %s", time.Now().UTC().Format("15:04:05"), load())
			samples := map[string][]time.Duration{}
			b.ResetTimer()
			for range b.N {
				for _, kind := range []string{"plain", "quick", "capture"} {
					edit()
					t := time.Now()
					var res build.Result
					var err error
					switch kind {
					case "plain":
						res, err = plain.Build(b.Context(), out())
					case "quick":
						res, err = q.Build(b.Context(), out())
						if err == nil && !res.Quick {
							b.Fatalf("a quick round went to the go command: %s", res.Why)
						}
					case "capture":
						fresh := build.NewQuick(&build.Builder{Dir: dir, Package: ".", Options: opts})
						res, err = fresh.Build(b.Context(), out())
						fresh.Close()
					}
					if err != nil {
						b.Fatal(err)
					}
					samples[kind] = append(samples[kind], time.Since(t))
				}
			}
			b.StopTimer()
			b.Logf("end %s UTC, load %s", time.Now().UTC().Format("15:04:05"), load())
			for _, kind := range []string{"plain", "quick", "capture"} {
				d := slices.Sorted(slices.Values(samples[kind]))
				b.ReportMetric(float64(d[len(d)/2].Milliseconds()), kind+"-ms")
				b.Logf("%-8s median %v  min %v  max %v  n=%d  %v", kind, d[len(d)/2].Round(time.Millisecond), d[0].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d), roundAll(samples[kind]))
			}
			// Each round's plain build less its quick build: what the quick path saves, the load of
			// the moment (the same in both, they run seconds apart) mostly cancelled out.
			var saved []time.Duration
			for i := range samples["plain"] {
				saved = append(saved, samples["plain"][i]-samples["quick"][i])
			}
			d := slices.Sorted(slices.Values(saved))
			b.ReportMetric(float64(d[len(d)/2].Milliseconds()), "saved-ms")
			b.Logf("saved    median %v  (plain - quick, round by round) %v", d[len(d)/2].Round(time.Millisecond), roundAll(saved))
			b.ReportMetric(0, "ns/op")
			// The last edit, built both ways: the same binary but for the build ID.
			edit()
			qo, po := out(), out()
			res, err := q.Build(b.Context(), qo)
			if err != nil || !res.Quick {
				b.Fatalf("the last quick build: %v, %s", err, res.Why)
			}
			if _, err := plain.Build(b.Context(), po); err != nil {
				b.Fatal(err)
			}
			sameBinary(b, w.name, qo, po, false)
		})
	}
}

func roundAll(d []time.Duration) []time.Duration {
	r := make([]time.Duration, len(d))
	for i := range d {
		r[i] = d[i].Round(time.Millisecond)
	}
	return r
}
