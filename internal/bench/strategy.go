package bench

import (
	"context"
	"fmt"
	"strings"
)

// Strategy is one way of bringing an edit into the running app, one type each (as kind's
// providers): gobuild is go build and a restart without hotpod (gobuild.go), local, hotpod,
// quick, full and upx run hotpod dev (hotpod.go), image rebuilds and rolls
// the image (image.go), the docker-* variants build the image as a Dockerfile would (docker.go),
// incluster compiles inside the container (incluster.go). Every one is measured the same way: a
// warm-up edit, then Config.Iterations edits, each timed from the edit's stamp to the first
// answer that carries it.
type Strategy interface {
	// Name is how --strategy and the records call it.
	Name() string
	// Cluster says it measures in a namespace of its own, over every link; the floor (local)
	// runs on this machine alone and only on the direct link.
	Cluster() bool
	// HotpodReports says hotpod reports its own edit_to_ready_ms for every edit: a cross-check
	// that Sane expects.
	HotpodReports() bool
	// Unavailable says why this machine cannot run it, or "".
	Unavailable() string
	// Measure makes the warm-up edit and then c.Iterations edits of w, in namespace ns when it
	// runs in the cluster, and returns the measured ones (the warm-up left out).
	Measure(ctx context.Context, c Config, w *workload, ns string) ([]sample, error)
}

// The strategies' names.
const (
	Local = "local" // the floor: hotpod dev --local, the same build and a restart, no cluster
	// GoBuild is the floor users know: plain `go build -o` with the go command's defaults and
	// the app killed and started again on this machine (what air does), no hotpod.
	GoBuild = "gobuild"
	Hotpod  = "hotpod" // hotpod dev, the default delta/raw choice per link
	Full    = "full"   // hotpod dev --ship full: the whole binary, compressed, every time
	// Quick is hotpod dev --quick-build: an edit built by re-running go build's own compile and
	// link commands when nothing else changed (build.Quick).
	Quick = "quick"
	// UPX is the article's F + UPX: hotpod dev shipping the whole binary, packed by `upx -q -1`
	// (the fastest level, the kindest to UPX in an edit loop) instead of zstd. Skipped without
	// an upx binary on PATH.
	UPX   = "upx"
	Image = "image" // rebuild the image, push, roll the Deployment (skaffold + ko's default loop)
	// InCluster syncs the changed sources into the container and compiles them there.
	InCluster = "incluster"
	// The original article's Dockerfile variants (docker.go).
	DockerVendor  = "docker-vendor"   // B: vendored modules, no build cache
	DockerVendorW = "docker-vendor-w" // C: B + -ldflags=-w
	DockerGocache = "docker-gocache"  // D: B + a warm GOCACHE copied into the context
)

// all is every strategy, in the order they are reported.
var all = []Strategy{gobuildStrategy{}, localStrategy{}, hotpodStrategy{}, quickStrategy{}, fullStrategy{}, upxStrategy{}, imageStrategy{},
	inClusterStrategy{}, dockerStrategy{variant: DockerVendor},
	dockerStrategy{variant: DockerVendorW}, dockerStrategy{variant: DockerGocache}}

// Strategies returns every strategy's name, in the order they are reported.
func Strategies() []string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name()
	}
	return names
}

// Lookup returns the strategy called name.
func Lookup(name string) (Strategy, error) {
	for _, s := range all {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown strategy %q: want one of %s", name, strings.Join(Strategies(), ", "))
}

// HotpodReports says whether the strategy called name runs hotpod dev, which reports its own
// edit_to_ready_ms.
func HotpodReports(name string) bool {
	s, err := Lookup(name)
	return err == nil && s.HotpodReports()
}

// clusterDefaults is what most strategies are: measured in the cluster, without hotpod's own
// figure, available everywhere. Embedded, it leaves a strategy only its name and its measurement.
type clusterDefaults struct{}

func (clusterDefaults) Cluster() bool       { return true }
func (clusterDefaults) HotpodReports() bool { return false }
func (clusterDefaults) Unavailable() string { return "" }
