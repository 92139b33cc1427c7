package manifest

import (
	"fmt"
	"sort"
	"strings"
)

// PodTemplate is a pod found in an object: a Pod itself, or the template of any workload kind,
// built-in or custom (a Deployment, a CronJob's job template, a Knative Service, an Argo
// Rollout...). Meta and Spec are the live maps inside the object: changes go into it.
type PodTemplate struct {
	Path []string       // where the template sits in the object ("spec", "template"); empty for a Pod
	Meta map[string]any // its metadata (labels, annotations), created when absent
	Spec map[string]any // its pod spec (containers, initContainers, volumes, ...)
}

// PodTemplates finds every pod template in o, the way ko finds images: by shape, not by kind. A
// pod template is a map whose "spec" is a map with a list of container maps under "containers";
// its "metadata" holds the pod's labels. Map keys are visited in order, so the result is stable.
func PodTemplates(o *Object) []PodTemplate {
	var out []PodTemplate
	var walk func(m map[string]any, path []string)
	walk = func(m map[string]any, path []string) {
		if spec, ok := m["spec"].(map[string]any); ok && isContainerList(spec["containers"]) {
			meta, ok := m["metadata"].(map[string]any)
			if !ok {
				meta = map[string]any{}
				m["metadata"] = meta
			}
			out = append(out, PodTemplate{Path: append([]string(nil), path...), Meta: meta, Spec: spec})
			return // a pod spec holds no further pod templates
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if path == nil && (k == "metadata" || k == "status") {
				continue
			}
			switch v := m[k].(type) {
			case map[string]any:
				walk(v, append(path, k))
			case []any:
				for i, x := range v {
					if xm, ok := x.(map[string]any); ok {
						walk(xm, append(path, fmt.Sprintf("%s[%d]", k, i)))
					}
				}
			}
		}
	}
	walk(o.Object, []string{})
	return out
}

func isContainerList(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return false
	}
	for _, c := range l {
		if _, ok := c.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// containers returns the maps of a pod spec's list field (containers, initContainers).
func containers(spec map[string]any, field string) []map[string]any {
	l, _ := spec[field].([]any)
	out := make([]map[string]any, 0, len(l))
	for _, c := range l {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// ContainerImages lists the distinct images of the containers and init containers of every pod
// template in objs, as the manifests name them, in order of appearance.
func ContainerImages(objs []*Object) []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range objs {
		for _, t := range PodTemplates(o) {
			for _, f := range []string{"initContainers", "containers"} {
				for _, c := range containers(t.Spec, f) {
					if img, _ := c["image"].(string); img != "" && !seen[img] {
						seen[img] = true
						out = append(out, img)
					}
				}
			}
		}
	}
	return out
}

// KoPrefix marks an image to build from a Go import path, as ko does.
const KoPrefix = "ko://"

// KoRefs lists the distinct import paths of the ko:// references in objs, in order of
// appearance. Like ko, it looks at every string of every object, not only at container images:
// a custom resource, an env value or a ConfigMap may name an image too.
func KoRefs(objs []*Object) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, o := range objs {
		var err error
		eachString(o.Object, func(s string) string {
			if !strings.HasPrefix(s, KoPrefix) {
				return s
			}
			ip := strings.TrimPrefix(s, KoPrefix)
			if ip == "" || strings.ContainsAny(ip, " \t\n") {
				if err == nil {
					err = fmt.Errorf("%s/%s: %q names no import path: write ko://<import path of a main package>", o.GetKind(), o.GetName(), s)
				}
				return s
			}
			if !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
			return s
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Resolve replaces every ko:// reference in o, wherever it is, by the reference of its build
// (refs is keyed by import path). A reference with no build is an error.
func Resolve(o *Object, refs map[string]string) error {
	var err error
	eachString(o.Object, func(s string) string {
		if !strings.HasPrefix(s, KoPrefix) {
			return s
		}
		r, ok := refs[strings.TrimPrefix(s, KoPrefix)]
		if !ok {
			if err == nil {
				err = fmt.Errorf("%s/%s: %s was not built", o.GetKind(), o.GetName(), s)
			}
			return s
		}
		return r
	})
	return err
}

// eachString replaces every string value under v (map values and list items, not keys) by
// fn's result, in place.
func eachString(v any, fn func(string) string) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := x[k].(string); ok {
				x[k] = fn(s)
			} else {
				eachString(x[k], fn)
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = fn(s)
			} else {
				eachString(e, fn)
			}
		}
	}
}
