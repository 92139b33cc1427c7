// Package manifest reads the user's Kubernetes manifests and rewrites them for dev mode: ko://
// image references replaced by built digests, and each container that runs a built image put
// under the hotpod agent.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Object is one Kubernetes object as read.
type Object = unstructured.Unstructured

// Read parses the YAML or JSON documents in r. source names r in errors.
func Read(r io.Reader, source string) ([]*Object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*Object
	for i := 1; ; i++ {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(m) == 0 {
			continue // an empty document between two ---
		}
		o := &Object{Object: m}
		if list, ok := m["items"].([]any); ok && strings.HasSuffix(o.GetKind(), "List") {
			for j, it := range list {
				im, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: document %d: item %d is not an object", source, i, j+1)
				}
				item := &Object{Object: im}
				if err := check(item); err != nil {
					return nil, fmt.Errorf("%s: document %d item %d: %w", source, i, j+1, err)
				}
				out = append(out, item)
			}
			continue
		}
		if err := check(o); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		out = append(out, o)
	}
}

func check(o *Object) error {
	switch {
	case o.GetAPIVersion() == "":
		return errors.New("no apiVersion: every object needs apiVersion and kind")
	case o.GetKind() == "":
		return errors.New("no kind: every object needs apiVersion and kind")
	case o.GetName() == "" && o.GetGenerateName() == "":
		return fmt.Errorf("%s has no metadata.name", o.GetKind())
	}
	return nil
}

// ReadPaths reads files and directories (their *.yaml, *.yml and *.json files, not recursing,
// in name order), as kubectl apply -f does.
func ReadPaths(paths []string) ([]*Object, error) {
	var out []*Object
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", p, err)
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				switch filepath.Ext(e.Name()) {
				case ".yaml", ".yml", ".json":
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("manifest directory %s has no .yaml, .yml or .json files", p)
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("manifest %s: %w", f, err)
			}
			objs, err := Read(bytes.NewReader(b), f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}
