package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the strict pass: aliases can make a small file a huge tree.
const maxNodes = 100_000

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// strict checks the node tree against Config before it is decoded: every key must be a field,
// every value of the kind its field takes. It records each field's line for validation errors.
// yaml.v3's own KnownFields names neither the file nor a path, so hotpod walks the tree itself.
func strict(root *yaml.Node, c *Config, file string) error {
	w := &walker{file: file, lines: c.lines}
	c.lines[""] = root.Line
	return w.walk(root, reflect.TypeFor[Config](), "")
}

type walker struct {
	file  string
	lines map[string]int
	nodes int
}

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return fmt.Errorf("%s:%d: %s", w.file, n.Line, msg)
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) error {
	if w.nodes++; w.nodes > maxNodes {
		return w.errorf(n, path, "more than %d YAML nodes (aliases?): write the file out plainly", maxNodes)
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return w.errorf(n, path, "unknown alias")
		}
		n = n.Alias
	}
	if _, seen := w.lines[path]; !seen || path == "" {
		w.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value: the field's zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		return nil // the type checks its own form, and its errors carry the line
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.errorf(n, path, "want a map of fields, got %s", kindName(n))
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if err := w.walk(v, t, path); err != nil {
					return err
				}
				continue
			}
			f, ok := fields[k.Value]
			if !ok && path == "" && strings.HasPrefix(k.Value, "x-") {
				if err := w.count(v); err != nil {
					return err
				}
				continue // an extension field: a place for YAML anchors, as in compose files
			}
			if !ok {
				return w.errorf(k, "", "unknown field %q%s%s", k.Value, where(path), suggest(k.Value, fields))
			}
			if err := w.walk(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
			w.lines[join(path, k.Value)] = k.Line
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return w.errorf(n, path, "want a list, got %s", kindName(n))
		}
		for i, e := range n.Content {
			if err := w.walk(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.errorf(n, path, "want a map, got %s", kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return w.errorf(k, path, "want a string key, got %s", kindName(k))
			}
			if err := w.walk(v, t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Interface:
		return w.count(n)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return w.errorf(n, path, "want a string, got %s", kindName(n))
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return w.errorf(n, path, "want true or false, got %s", kindName(n))
		}
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			return w.errorf(n, path, "want a whole number, got %s", kindName(n))
		}
	default:
		return w.errorf(n, path, "hotpod cannot read a %s field", t.Kind())
	}
	return nil
}

// count walks a free-form value (Helm's set) only to bound its size.
func (w *walker) count(n *yaml.Node) error {
	if w.nodes++; w.nodes > maxNodes {
		return w.errorf(n, "", "more than %d YAML nodes (aliases?): write the file out plainly", maxNodes)
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return w.count(n.Alias)
	}
	for _, c := range n.Content {
		if err := w.count(c); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps the yaml names of t's fields (inline structs flattened) to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-" || !f.IsExported():
		case opts == "inline":
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
		case name != "":
			out[name] = f
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// suggest names the known field closest to a misspelt one, when one is close.
func suggest(got string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if d := distance(strings.ToLower(got), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return " (known: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of two short strings.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if len(n.Value) > 40 {
			return fmt.Sprintf("%q...", n.Value[:40])
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
