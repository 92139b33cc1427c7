package agent_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agent"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/klauspost/compress/zstd"
)

// BenchmarkRestartDrainingApp measures what each way of stopping costs a restart of an app that
// drains for 3 s on SIGTERM (keeps serving, so that load balancers stop sending it traffic): the
// time from the stop to the new process running (restart_ms). "listeners-closed" is the
// candidate policy that starts the new process once the old one has closed its listening socket:
// measured as the time from SIGTERM until the app's port can be bound again. fast/drain=0s is an
// app that exits at once on SIGTERM: the fast policy costs it nothing over kill.
//
//	go test ./internal/agent/ -run XXX -bench RestartDrainingApp -benchtime 3x
func BenchmarkRestartDrainingApp(b *testing.B) {
	for _, c := range []struct {
		policy agent.StopPolicy
		drain  string
	}{{agent.StopGraceful, "3s"}, {agent.StopFast, "3s"}, {agent.StopKill, "3s"}, {agent.StopFast, "0s"}} {
		policy := c.policy
		b.Run(string(policy)+"/drain="+c.drain, func(b *testing.B) {
			f := startWith(b, b.TempDir(), func(cfg *agent.Config) {
				cfg.Env = append(cfg.Env, "DRAIN="+c.drain)
				cfg.StopPolicy = policy
				cfg.Grace = 30 * time.Second
			})
			f.waitReady(b) // its SIGTERM handler is in place
			var total float64
			for b.Loop() {
				res, err := f.client.Restart(b.Context(), waitReady)
				if err != nil {
					b.Fatal(err)
				}
				total += res.RestartMS
			}
			b.ReportMetric(total/float64(b.N), "restart_ms")
		})
	}
	b.Run("listeners-closed", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			port := freePortB(b)
			cmd := exec.Command(childV1)
			cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "DRAIN=3s")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			for {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
					break
				}
				time.Sleep(time.Millisecond)
			}
			t0 := time.Now()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			for {
				ln, err := net.Listen("tcp", addr)
				if err == nil {
					total += time.Since(t0)
					ln.Close()
					break
				}
				time.Sleep(time.Millisecond)
			}
			_ = cmd.Wait()
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "restart_ms")
	})
}

func freePortB(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// BenchmarkUpdateMemorySeedapp measures the agent's peak memory above idle while it applies a
// one-line edit's delta, a full patch and a raw one of examples/seedapp (a ~71 MB binary),
// reading VmHWM of the agent process. Builds seedapp first (its dependencies come from the
// module proxy or cache).
//
//	go test ./internal/agent/ -run XXX -bench UpdateMemorySeedapp -benchtime 1x
func BenchmarkUpdateMemorySeedapp(b *testing.B) {
	src, err := filepath.Abs("../../examples/seedapp")
	if err != nil {
		b.Fatal(err)
	}
	mod := b.TempDir()
	if out, err := exec.Command("cp", "-r", src+"/.", mod).CombinedOutput(); err != nil {
		b.Fatalf("copy seedapp: %v %s", err, out)
	}
	run := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Skipf("go %v: %v\n%s", args, err, out)
		}
	}
	run("run", "./gen")
	build := func(out string) []byte {
		run("build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		bin, err := os.ReadFile(out)
		if err != nil {
			b.Fatal(err)
		}
		return bin
	}
	v1 := build(filepath.Join(mod, "v1"))
	main, err := os.ReadFile(filepath.Join(mod, "main.go"))
	if err != nil {
		b.Fatal(err)
	}
	edited := regexp.MustCompile(`time\.Unix\(0, [0-9]*\)`).ReplaceAll(main, []byte("time.Unix(0, 1700000000000000000)"))
	if err := os.WriteFile(filepath.Join(mod, "main.go"), edited, 0o644); err != nil {
		b.Fatal(err)
	}
	v2 := build(filepath.Join(mod, "v2"))
	// A realistic edit: a new function, a new standard-library import, a changed string (most
	// bytes of the binary move: the delta carries frames, not only copies).
	bigger := bytes.Replace(edited, []byte("\"fmt\"\n"), []byte("\"fmt\"\n\t\"strings\"\n\t\"text/template\"\n"), 1)
	bigger = bytes.Replace(bigger, []byte("seedapp, blob of"), []byte("seedapp (edited), blob of"), 1)
	bigger = append(bigger, []byte(`
func init() {
	t := template.Must(template.New("x").Parse("{{.}} {{len .}}"))
	var b strings.Builder
	_ = t.Execute(&b, os.Args[0])
	log.Print(strings.ToUpper(b.String()))
}
`)...)
	if err := os.WriteFile(filepath.Join(mod, "main.go"), bigger, 0o644); err != nil {
		b.Fatal(err)
	}
	v3 := build(filepath.Join(mod, "v3"))
	realistic, err := delta.Encode(v2, v3, zstd.SpeedDefault)
	if err != nil {
		b.Fatal(err)
	}
	dlt, err := delta.Encode(v1, v2, zstd.SpeedDefault)
	if err != nil {
		b.Fatal(err)
	}
	back, err := delta.Encode(v2, v1, zstd.SpeedDefault)
	if err != nil {
		b.Fatal(err)
	}
	full, err := delta.Encode(nil, v2, zstd.SpeedFastest)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "app")
	if err := os.WriteFile(bin, v1, 0o755); err != nil {
		b.Fatal(err)
	}
	a := startAgentProc(b, bin)
	b.Logf("seedapp %.1f MB; one-line delta %.0f kB, realistic delta %.0f kB, full %.1f MB; agent idle RSS %d kB", float64(len(v1))/1e6,
		float64(len(dlt))/1e3, float64(len(realistic))/1e3, float64(len(full))/1e6, procKB(b, a.cmd.Process.Pid, "VmRSS"))
	var peak [4]float64
	for b.Loop() {
		peak[0] = max(peak[0], a.peakAbove(b, dlt), a.peakAbove(b, back)) // v1 → v2 → v1
		peak[1] = max(peak[1], a.peakAbove(b, full))                      // → v2
		peak[2] = max(peak[2], a.peakAbove(b, realistic))                 // → v3
		peak[3] = max(peak[3], a.peakAbove(b, delta.EncodeRaw(v1)))       // → v1
	}
	b.ReportMetric(peak[0], "delta_peak_MiB")
	b.ReportMetric(peak[2], "realistic_delta_peak_MiB")
	b.ReportMetric(peak[1], "full_peak_MiB")
	b.ReportMetric(peak[3], "raw_peak_MiB")
}
