package cli

import (
	"reflect"
	"testing"
)

func TestServiceNames(t *testing.T) {
	got := serviceNames([]string{"example.com/a/cmd/server", "example.com/b/cmd/server", "example.com/hello", "x.io/cmd/server"})
	want := map[string]string{"example.com/a/cmd/server": "a/cmd/server", "example.com/b/cmd/server": "b/cmd/server",
		"example.com/hello": "hello", "x.io/cmd/server": "x.io/cmd/server"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
