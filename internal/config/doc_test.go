package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryFieldDocumented: each field hotpod.yaml accepts is named in docs/config.md.
func TestEveryFieldDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var check func(t reflect.Type, path string)
	check = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for name, f := range yamlFields(typ) {
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/config.md does not name the field %s%s", path, name)
			}
			check(f.Type, path+name+".")
		}
	}
	check(reflect.TypeFor[Config](), "")
	if len(seen) < 4 {
		t.Fatalf("walked %d types: the check found too little to mean anything", len(seen))
	}
}
