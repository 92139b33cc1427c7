package image_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hotpod/hotpod/internal/image"
)

// An image of three layers of random (incompressible) bytes.
func threeLayers(t *testing.T) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for i := range 3 {
		data := make([]byte, 256<<10)
		rand.Read(data)
		l, err := image.Layer([]image.File{{Path: "f" + string(rune('a'+i)), Mode: 0o644, Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	base, err := image.Base(t.Context(), "scratch", v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Append(base, image.Config{}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A push that lasts reports how far it came, on the interval: bytes of the total and the layers;
// one shorter than the interval reports nothing. The registry (go-containerregistry's, in
// memory) holds the first blob upload until a report was made, so the push lasts by
// construction, not by the machine's speed.
func TestPushReportsProgressWhileItLasts(t *testing.T) {
	reported := make(chan struct{})
	var once sync.Once
	var held sync.Once
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
			held.Do(func() {
				select {
				case <-reported:
				case <-time.After(time.Minute):
				}
			})
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/progress"

	img := threeLayers(t)
	var mu sync.Mutex
	var got []image.Progress
	_, err := image.Push(t.Context(), img, repo, "a", image.WithProgress(time.Millisecond, func(p image.Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		once.Do(func() { close(reported) })
	}))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("a push held up until it reported reported nothing")
	}
	var last int64
	for _, p := range got {
		if p.Layers != 3 || p.Complete < last || p.Complete > p.Total && p.Total > 0 || p.Elapsed <= 0 {
			t.Fatalf("progress %+v (after %d bytes)", p, last)
		}
		last = p.Complete
	}
	if got[len(got)-1].Total < 3*256<<10 {
		t.Errorf("total %d bytes, want at least the three layers' %d", got[len(got)-1].Total, 3*256<<10)
	}

	// The same image again, with a report interval no push here lasts: silence.
	var silent bytes.Buffer
	if _, err := image.Push(t.Context(), threeLayers(t), repo, "b", image.WithProgress(time.Hour, func(p image.Progress) {
		silent.WriteString("report")
	})); err != nil {
		t.Fatal(err)
	}
	if silent.Len() != 0 {
		t.Fatal("a push shorter than the interval reported")
	}
}
