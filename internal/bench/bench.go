// Package bench is `hotpod bench`: the classic measurement of the Go-on-Kubernetes edit loop,
// reproduced on a real cluster. For each workload × strategy × link it makes N edits (after a
// warm-up) of the workload's timestamp line and times each edit until the new code answers
// through a port-forward, comparing hotpod with the usual image rebuild and rollout.
//
// Each strategy is a type behind the Strategy interface (strategy.go); the shaped link (network
// namespace, tc, relays) is package link, the markdown, SVG and JSON outputs package output,
// and the comparator that compiles inside the container package incluster. hotpod's own output
// is read through package report's event schema, never as human lines.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotpod/hotpod/examples"
	"github.com/hotpod/hotpod/internal/bench/link"
	"github.com/hotpod/hotpod/internal/kube"
)

// Config says what to measure.
type Config struct {
	Workloads  []string
	Strategies []string // names (Strategies lists them)
	Links      []link.Link
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

// Run measures every combination and returns the records.
func Run(ctx context.Context, c Config) ([]Record, error) {
	tmp, err := os.MkdirTemp("", "hotpod-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var out []Record
	for _, l := range c.Links {
		var rs []Record
		if l.Direct() || c.Inside {
			rs, err = c.runHere(ctx, l, tmp)
		} else {
			rs, err = c.runShaped(ctx, l, tmp)
		}
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// runHere measures every workload and strategy over l from this process's network.
func (c Config) runHere(ctx context.Context, l link.Link, tmp string) ([]Record, error) {
	var out []Record
	strategies := make([]Strategy, len(c.Strategies))
	for i, name := range c.Strategies {
		s, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		strategies[i] = s
	}
	for _, wname := range c.Workloads {
		c.logf("workload %s: preparing", wname)
		w, err := prepare(ctx, wname, c.RepoRoot, filepath.Join(tmp, l.String()))
		if err != nil {
			return out, err
		}
		for _, s := range strategies {
			name := w.name + " · " + s.Name() + " · " + l.String()
			if !s.Cluster() && !l.Direct() {
				continue // the floor has no link
			}
			if why := s.Unavailable(); why != "" {
				c.logf("%s: skipped: %s", name, why)
				out = append(out, Record{Workload: w.name, Strategy: s.Name(), Link: l.String(), Skipped: why})
				continue
			}
			c.logf("%s: %d edits after a warm-up", name, c.Iterations)
			samples, err := c.measure(ctx, w, s)
			if err != nil {
				w.restore()
				return out, fmt.Errorf("%s: %w", name, err)
			}
			r := summarize(w.name, s.Name(), l.String(), samples)
			c.logf("%s: median %.0f ms (min %.0f, max %.0f), %d bytes per edit", name, r.MedianMS, r.MinMS, r.MaxMS, r.BytesSent)
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
func (c Config) runShaped(ctx context.Context, l link.Link, tmp string) ([]Record, error) {
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
		if !slices.Contains(examples.Builtin, wname) {
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
	reg := RegistryHost(c.Repo)
	sl, err := link.Setup(l, map[string]string{link.PortOf(reg): reg, apiPort: u.Host})
	if err != nil {
		return nil, err
	}
	defer sl.Close()
	// KUBECONFIG is a colon-separated list: keep the link's colon out of the name.
	kcfg := filepath.Join(tmp, "kubeconfig-"+strings.ReplaceAll(l.String(), ":", "-"))
	if err := c.Kube.WriteKubeconfig("https://"+net.JoinHostPort(link.HostAddr, apiPort), u.Hostname(), kcfg); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "records-"+strings.ReplaceAll(l.String(), ":", "-")+".json")
	args := []string{"bench", "--inside-link", l.String(), "--json", out,
		"--edits", strconv.Itoa(c.Iterations), "--strategy", strings.Join(c.Strategies, ","),
		"--default-repo", c.Repo, "--base-image", c.Base}
	cmd := sl.Command(ctx, c.Hotpod, append(args, workloads...)...)
	cmd.Dir = c.RepoRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcfg)
	cmd.Stderr = c.Progress
	runErr := cmd.Run()
	var rs []Record
	if b, err := os.ReadFile(out); err == nil {
		_ = json.Unmarshal(b, &rs)
	}
	if runErr != nil {
		return rs, fmt.Errorf("the measurement behind link %s failed: %w", l, runErr)
	}
	return rs, nil
}

// measure runs strategy s on w, in a namespace of its own when it runs in the cluster.
func (c Config) measure(ctx context.Context, w *workload, s Strategy) ([]sample, error) {
	if !s.Cluster() {
		return s.Measure(ctx, c, w, "")
	}
	ns, cleanup, err := c.namespace(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return s.Measure(ctx, c, w, ns)
}

// RegistryHost is the host:port of an image repository such as 127.0.0.1:5000/bench.
func RegistryHost(repo string) string { return strings.SplitN(repo, "/", 2)[0] }

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
