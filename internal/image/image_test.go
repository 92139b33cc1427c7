package image_test

import (
	"net"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hotpod/hotpod/internal/image"
)

// A base image that cannot be fetched names the way out: scratch, or an image this machine can
// pull.
func TestBaseUnreachableSuggestsAnother(t *testing.T) {
	// A port that refuses: listen, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ref := addr + "/base:latest"
	_, err = image.Base(t.Context(), ref, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err == nil {
		t.Fatal("an unreachable base image was fetched")
	}
	for _, want := range []string{ref, "--base-image", "scratch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	img, err := image.Base(t.Context(), "scratch", v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	if cf, err := img.ConfigFile(); err != nil || cf.Architecture != "arm64" {
		t.Fatalf("scratch for arm64: %+v, %v", cf, err)
	}
}
