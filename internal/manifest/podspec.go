package manifest

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// podSpecPath is where each workload kind keeps its pod spec.
func podSpecPath(kind string) []string {
	switch kind {
	case "Pod":
		return []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		return []string{"spec", "template", "spec"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	return nil
}

// podTemplateMetaPath is where the pod's metadata lives (labels, annotations).
func podTemplateMetaPath(kind string) []string {
	p := podSpecPath(kind)
	if p == nil {
		return nil
	}
	return append(append([]string{}, p[:len(p)-1]...), "metadata")
}

// eachContainer calls fn for every container (not init container) of o's pod spec, in place.
func eachContainer(o *Object, fn func(c map[string]any) error) error {
	return eachIn(o, "containers", fn)
}

// eachIn calls fn for every entry of the pod spec's list field (containers, initContainers).
func eachIn(o *Object, field string, fn func(c map[string]any) error) error {
	path := podSpecPath(o.GetKind())
	if path == nil {
		return nil
	}
	cs, found, err := unstructured.NestedSlice(o.Object, append(path, field)...)
	if err != nil || !found {
		return err
	}
	for i, c := range cs {
		cm, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("%s/%s: container %d is not an object", o.GetKind(), o.GetName(), i)
		}
		if err := fn(cm); err != nil {
			return fmt.Errorf("%s/%s: container %v: %w", o.GetKind(), o.GetName(), cm["name"], err)
		}
	}
	return unstructured.SetNestedSlice(o.Object, cs, append(path, field)...)
}

// KoPrefix marks an image to build from a Go import path, as ko does.
const KoPrefix = "ko://"

// KoRefs lists the distinct import paths of ko:// images in objs, in order of appearance.
func KoRefs(objs []*Object) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, o := range objs {
		err := eachImage(o, func(c map[string]any) error {
			img, _ := c["image"].(string)
			if !strings.HasPrefix(img, KoPrefix) {
				return nil
			}
			ip := strings.TrimPrefix(img, KoPrefix)
			if ip == "" {
				return fmt.Errorf("image %q names no import path: write ko://<import path of a main package>", img)
			}
			if !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eachImage calls fn for every container and init container.
func eachImage(o *Object, fn func(c map[string]any) error) error {
	if err := eachIn(o, "initContainers", fn); err != nil {
		return err
	}
	return eachIn(o, "containers", fn)
}
