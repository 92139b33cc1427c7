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
	"github.com/hotpod/hotpod/internal/agentapi"
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
	v1, v2, v3 := buildSeedapp(b)
	realistic := encode(b, v2, v3, zstd.SpeedDefault)
	dlt := encode(b, v1, v2, zstd.SpeedDefault)
	back := encode(b, v2, v1, zstd.SpeedDefault)
	full := encode(b, nil, v2, zstd.SpeedFastest)
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

// BenchmarkUpdateSeedapp measures what the agent's side of an update of examples/seedapp (a ~71
// MB binary) costs, in the agent as a process on the test machine's disk (the temp directory):
// apply_ms is the agent's ApplyMS (writing the new binary and verifying it, after the last byte
// arrived), update_ms the whole Update call on loopback (transfer, apply, swap, restart and, with
// wait=ready, the app's start until its port answers). delta is a one-line edit's (v1 → v2 → v1),
// raw the whole binary.
//
//	go test ./internal/agent/ -run XXX -bench UpdateSeedapp -benchtime 20x
func BenchmarkUpdateSeedapp(b *testing.B) {
	v1, v2, _ := buildSeedapp(b)
	fwd := encode(b, v1, v2, zstd.SpeedDefault)
	b.Logf("seedapp %.1f MB, one-line delta %d bytes", float64(len(v1))/1e6, len(fwd))
	back := encode(b, v2, v1, zstd.SpeedDefault)
	kinds := []struct {
		name  string
		there []byte // v1 → v2
		again []byte // v2 → v1
	}{{"delta", fwd, back}, {"raw", delta.EncodeRaw(v2), delta.EncodeRaw(v1)}}
	for _, k := range kinds {
		for _, wait := range []agentapi.Wait{agentapi.WaitStarted, agentapi.WaitReady} {
			b.Run(k.name+"/wait="+string(wait), func(b *testing.B) {
				bin := filepath.Join(b.TempDir(), "app")
				if err := os.WriteFile(bin, v1, 0o755); err != nil {
					b.Fatal(err)
				}
				a := startAgentProc(b, bin)
				p := agentapi.UpdateParams{Wait: wait, Timeout: 60 * time.Second}
				var apply, total float64
				for i := 0; b.Loop(); i++ {
					patch, want := k.there, v2
					if i%2 == 1 {
						patch, want = k.again, v1
					}
					t0 := time.Now()
					res, err := a.client.Update(b.Context(), patch, p)
					d := time.Since(t0)
					if err != nil || res.SHA256 != delta.Sum(want).String() {
						b.Fatalf("update %d: %+v %v\n%s", i, res, err, a.out.String())
					}
					apply += res.ApplyMS
					total += float64(d.Microseconds()) / 1000
					// The next update waits until this one's app is up: its start is not timed.
					for st := res.Status; st.State != agentapi.StateReady; {
						if st.State == agentapi.StateExited {
							b.Fatalf("the app exited: %+v\n%s", st, a.out.String())
						}
						time.Sleep(5 * time.Millisecond)
						if st, err = a.client.Status(b.Context()); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(apply/float64(b.N), "apply_ms")
				b.ReportMetric(total/float64(b.N), "update_ms")
			})
		}
	}
}

// buildSeedapp builds examples/seedapp (a ~71 MB binary, `-s -w`) three times: v1, v2 after a
// one-line edit (its timestamp), v3 after a realistic edit of v2 (a new function, a new
// standard-library import, a changed string). Its dependencies come from the module proxy or
// cache; without them the benchmark is skipped.
func buildSeedapp(b *testing.B) (v1, v2, v3 []byte) {
	b.Helper()
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
	v1 = build(filepath.Join(mod, "v1"))
	main, err := os.ReadFile(filepath.Join(mod, "main.go"))
	if err != nil {
		b.Fatal(err)
	}
	edited := regexp.MustCompile(`time\.Unix\(0, [0-9]*\)`).ReplaceAll(main, []byte("time.Unix(0, 1700000000000000000)"))
	if err := os.WriteFile(filepath.Join(mod, "main.go"), edited, 0o644); err != nil {
		b.Fatal(err)
	}
	v2 = build(filepath.Join(mod, "v2"))
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
	v3 = build(filepath.Join(mod, "v3"))
	return v1, v2, v3
}
