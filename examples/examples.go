// Package examples carries the sources of hotpod bench's built-in workloads, so that `hotpod
// bench hello|seedapp|drainapp|drainapp30|kubeapp` works from an installed hotpod, outside a checkout.
//
// hello/main.go is embedded as it is. seedapp (badger, influxdb), drainapp (gRPC, Prometheus,
// OpenTelemetry; a 3 s drain on SIGTERM) and kubeapp (drainapp with client-go: a 42 MB binary)
// are modules of their own, which go:embed cannot reach and a module zip leaves out, so their
// files travel as NAME.txtar, copies that TestArchives keeps equal to them (go test -update
// rewrites them).
// seedapp's ~50 MB blob is generated from gen/main.go where the workload is prepared, never
// embedded. drainapp30 is drainapp with a generated 14.4 MB asset embedded in a package of its
// own: a 30 MB binary, the size at which the bench checks that a small patch ships in under 50 ms.
package examples

import (
	"embed"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
)

//go:embed hello/main.go
var hello []byte

//go:embed *.txtar
var archives embed.FS

// Builtin names the built-in workloads.
var Builtin = []string{"hello", "seedapp", "drainapp", "drainapp30", "kubeapp"}

// Modules are the built-in workloads that are modules of their own, each with the files its
// archive holds, slash-separated.
var Modules = map[string][]string{
	"seedapp":  {"go.mod", "go.sum", "main.go", "blob/blob.go", "gen/main.go"},
	"drainapp": {"go.mod", "go.sum", "main.go"},
	"kubeapp":  {"go.mod", "go.sum", "main.go", "kube.go"},
}

// Sources returns the files of the built-in workload name ("hello": main.go alone, a package of
// the hotpod module; drainapp30: drainapp's and its asset's; the others, Modules: a whole module
// each, from NAME.txtar), by slash-separated path.
func Sources(name string) (map[string][]byte, error) {
	if name == "hello" {
		return map[string][]byte{"main.go": hello}, nil
	}
	if name == "drainapp30" {
		files, err := Sources("drainapp")
		if err != nil {
			return nil, err
		}
		files["asset.go"], files["asset/asset.go"], files["asset/asset.bin"] = assetUse, assetPackage, asset(assetSize)
		return files, nil
	}
	if _, ok := Modules[name]; ok {
		a, err := archives.ReadFile(name + ".txtar")
		if err != nil {
			return nil, err
		}
		return ParseArchive(a)
	}
	return nil, fmt.Errorf("no built-in workload %q: want one of %s", name, strings.Join(Builtin, ", "))
}

// The archive is txtar's format: a comment, then each file as a "-- path --" line and its
// content, which must end with a newline.

// Archive packs files in the order of names, after comment.
func Archive(comment string, names []string, files map[string][]byte) ([]byte, error) {
	var b strings.Builder
	b.WriteString(comment)
	for _, n := range names {
		data := string(files[n])
		if !strings.HasSuffix(data, "\n") {
			return nil, fmt.Errorf("%s: does not end with a newline", n)
		}
		for _, line := range strings.SplitAfter(data, "\n") {
			if _, ok := marker(line); ok {
				return nil, fmt.Errorf("%s: has a line like an archive's file marker (%q)", n, strings.TrimSpace(line))
			}
		}
		fmt.Fprintf(&b, "-- %s --\n%s", n, data)
	}
	return []byte(b.String()), nil
}

// ParseArchive unpacks what Archive packed.
func ParseArchive(a []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	var name string
	var data strings.Builder
	flush := func() {
		if name != "" {
			files[name] = []byte(data.String())
		}
		data.Reset()
	}
	for _, line := range strings.SplitAfter(string(a), "\n") {
		if n, ok := marker(line); ok {
			flush()
			if _, dup := files[n]; dup {
				return nil, fmt.Errorf("archive: %s twice", n)
			}
			name = n
			continue
		}
		if name != "" {
			data.WriteString(line)
		}
	}
	flush()
	if len(files) == 0 {
		return nil, fmt.Errorf("archive: no files")
	}
	return files, nil
}

func marker(line string) (string, bool) {
	line = strings.TrimSuffix(line, "\n")
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

// drainapp30's asset: 14.4 MB of random bytes (the same every time, so that only the edit differs
// between builds), which no compression shrinks, in a package of its own as a service's embedded
// assets are (an edit of main recompiles main alone), used where the linker cannot drop it.
const assetSize = 14_400_000

var (
	assetPackage = []byte(`// Package asset holds drainapp30's generated 14.4 MB asset.
package asset

import _ "embed"

//go:embed asset.bin
var Bytes []byte
`)
	assetUse = []byte(`package main

import (
	"os"

	"github.com/hotpod/hotpod/examples/drainapp/asset"
)

func init() {
	if os.Getenv("DRAINAPP_ASSET") != "" {
		os.Stdout.Write(asset.Bytes)
	}
}
`)
)

func asset(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(30, 30))
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}
