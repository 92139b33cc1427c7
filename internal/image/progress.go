package image

import (
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Progress is how far a push has come.
type Progress struct {
	Elapsed         time.Duration
	Complete, Total int64 // bytes of the blobs to write (those the registry has count as written)
	Layers          int   // layers of the image (of every image, for an index)
}

// PushOption changes how Push and PushIndex write.
type PushOption func(*pushOptions)

type pushOptions struct {
	every  time.Duration
	report func(Progress)
}

// WithProgress calls report every interval while the push lasts: a push shorter than every
// reports nothing, a long one (a first push of a big base over a slow link) says it is moving.
func WithProgress(every time.Duration, report func(Progress)) PushOption {
	return func(o *pushOptions) { o.every, o.report = every, report }
}

// watch starts following a push of an image with layers layers: it returns the option to give
// go-containerregistry and a stop to call once the write returned.
func (o pushOptions) watch(layers int) ([]remote.Option, func()) {
	if o.report == nil || o.every <= 0 {
		return nil, func() {}
	}
	// go-containerregistry sends an update per chunk written and closes the channel at the
	// end: keep the latest, report it on a ticker.
	updates := make(chan v1.Update, 64)
	var (
		mu     sync.Mutex
		latest v1.Update
	)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for u := range updates {
			if u.Error == nil {
				mu.Lock()
				latest = u
				mu.Unlock()
			}
		}
	}()
	start := time.Now()
	done := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(o.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				u := latest
				mu.Unlock()
				o.report(Progress{Elapsed: time.Since(start), Complete: u.Complete, Total: u.Total, Layers: layers})
			}
		}
	}()
	var once sync.Once
	return []remote.Option{remote.WithProgress(updates)}, func() {
		once.Do(func() {
			close(done)
			<-ticked
			// A write that failed before it started never closes the channel.
			select {
			case <-drained:
			case <-time.After(time.Second):
			}
		})
	}
}

func pushOpts(opts []PushOption) pushOptions {
	var o pushOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// layerCount is the number of layers of img, 0 when it cannot tell.
func layerCount(img v1.Image) int {
	ls, err := img.Layers()
	if err != nil {
		return 0
	}
	return len(ls)
}

// indexLayerCount is the number of layers of every image of idx.
func indexLayerCount(idx v1.ImageIndex) int {
	m, err := idx.IndexManifest()
	if err != nil {
		return 0
	}
	n := 0
	for _, d := range m.Manifests {
		if img, err := idx.Image(d.Digest); err == nil {
			n += layerCount(img)
		}
	}
	return n
}
