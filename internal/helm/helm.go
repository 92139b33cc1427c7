// Package helm renders a local Helm chart into Kubernetes objects as `helm template` does, with
// the Helm SDK, so the rest of hotpod takes them like objects read from -f files.
//
// Rendering is client-only: it never talks to a cluster (no lookup, no release Secret), so
// hotpod, not Helm, applies the objects and `helm list` does not show them. It runs Helm's own
// install action in dry-run, client-only mode rather than the template engine alone: that is
// exactly `helm template`'s path (dependency conditions and import-values, values schema
// validation, .Release and .Capabilities, CRDs, hook sorting), which the engine alone would
// leave to be copied.
//
// Hooks: those that `helm install` runs (pre-install, post-install) are returned as plain
// objects, pre-install ones first and post-install ones last, each group in Helm's order (weight,
// then name); they are applied with the rest and removed with it, so hook-delete-policy and
// waiting between phases do not apply. Test, upgrade, rollback and delete hooks are left out.
// NoHooks leaves out all hooks, as `helm install --no-hooks` does.
package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/release"

	"github.com/hotpod/hotpod/internal/manifest"
)

// Options say what to render.
type Options struct {
	Chart       string   // the chart's directory (with Chart.yaml; dependencies under charts/)
	ValuesFiles []string // merged in order over the chart's values.yaml, as helm -f
	// Set are values by --set key paths (a.b[0].c). A string is read as `helm --set` reads it
	// (2 is a number, true a bool, {a,b} a list); other YAML scalars keep their type.
	Set map[string]any
	// SetString are values by --set-string key paths: always strings.
	SetString map[string]string
	Release   string // .Release.Name; the chart's name when empty
	Namespace string // .Release.Namespace; "default" when empty, as with helm
	NoHooks   bool   // leave out every hook
	SkipCRDs  bool   // leave out the CRDs in the crds/ directories of the chart and its subcharts
	// KubeVersion and APIVersions are .Capabilities; Helm's defaults when empty. Pass the
	// cluster's for charts that branch on them.
	KubeVersion string
	APIVersions []string
}

// Render renders the chart in o and returns its objects: the CRDs (crds/ directories, not
// templated), pre-install hooks, the manifests in Helm's install order, post-install hooks.
func Render(ctx context.Context, o Options) ([]*manifest.Object, error) {
	ch, err := load(o.Chart)
	if err != nil {
		return nil, err
	}
	vals, err := mergeValues(o)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %w", o.Chart, err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true // as helm template
	inst.DisableHooks = o.NoHooks
	// CRDs are not templated; helm install creates them before anything else, and so does
	// objects.
	inst.IncludeCRDs = false
	inst.ReleaseName = o.Release
	if inst.ReleaseName == "" {
		inst.ReleaseName = ch.Name()
	}
	if chartutil.ValidateReleaseName(inst.ReleaseName) != nil {
		return nil, fmt.Errorf("helm release name %q: set release: to at most 53 characters among lower-case letters, digits, - and dots", inst.ReleaseName)
	}
	inst.Namespace = o.Namespace
	if inst.Namespace == "" {
		inst.Namespace = "default"
	}
	if o.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("helm: Kubernetes version %q: %w", o.KubeVersion, err)
		}
		inst.KubeVersion = kv
	}
	inst.APIVersions = o.APIVersions
	rel, err := inst.RunWithContext(ctx, ch, vals)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %s", o.Chart, oneLine(err.Error()))
	}
	var crds []chart.CRD
	if !o.SkipCRDs {
		crds = ch.CRDObjects()
	}
	return objects(o.Chart, crds, rel, o.NoHooks)
}

// load reads the chart directory and checks that `helm install` would take it.
func load(dir string) (*chart.Chart, error) {
	fi, err := os.Stat(filepath.Join(dir, "Chart.yaml"))
	if err != nil || fi.IsDir() {
		return nil, fmt.Errorf("helm chart %s: no Chart.yaml there: name a chart's directory (for a chart from a repository, helm pull --untar it first)", dir)
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("helm chart %s: %s", dir, oneLine(err.Error()))
	}
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return nil, fmt.Errorf("helm chart %s is a %s chart, which cannot be installed: name an application chart", dir, t)
	}
	if reqs := ch.Metadata.Dependencies; len(reqs) > 0 {
		if err := action.CheckDependencies(ch, reqs); err != nil {
			return nil, fmt.Errorf("helm chart %s: %v: run helm dependency build %s", dir, err, dir)
		}
	}
	return ch, nil
}

// mergeValues merges as helm does: values files in order, then typed set values (as
// --set-json), --set strings, then --set-string. Keys go in sorted order so the result does not
// depend on map order when paths overlap.
func mergeValues(o Options) (map[string]any, error) {
	opts := values.Options{ValueFiles: o.ValuesFiles}
	for _, k := range sortedKeys(o.Set) {
		switch v := o.Set[k].(type) {
		case string:
			opts.Values = append(opts.Values, k+"="+setString(v))
		case map[string]any, []any:
			return nil, fmt.Errorf("set %s: want a single value: put maps and lists in a values file", k)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("set %s: %w", k, err)
			}
			opts.JSONValues = append(opts.JSONValues, k+"="+string(b))
		}
	}
	for _, k := range sortedKeys(o.SetString) {
		opts.StringValues = append(opts.StringValues, k+"="+escapeCommas(o.SetString[k]))
	}
	for _, f := range o.ValuesFiles {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, errors.Unwrap(err))
		}
	}
	return opts.MergeValues(nil) // no getters: values files are local paths
}

// setString keeps a set string one value: a comma separates assignments in --set syntax, except
// inside a {a,b} list.
func setString(v string) string {
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		return v
	}
	return escapeCommas(v)
}

func escapeCommas(v string) string { return strings.ReplaceAll(v, ",", `\,`) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// objects parses the chart's CRDs and the rendered release: the CRDs, the pre-install hooks, the
// manifest (in Helm's install order), the post-install hooks.
func objects(chartDir string, crds []chart.CRD, rel *release.Release, noHooks bool) ([]*manifest.Object, error) {
	var pre, post []*release.Hook
	if !noHooks {
		for _, h := range rel.Hooks {
			switch {
			case slices.Contains(h.Events, release.HookPreInstall):
				pre = append(pre, h)
			case slices.Contains(h.Events, release.HookPostInstall):
				post = append(post, h)
			}
		}
	}
	var out []*manifest.Object
	for _, c := range crds {
		objs, err := manifest.Read(bytes.NewReader(c.File.Data), chartDir+": "+c.Filename)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	addHooks := func(hooks []*release.Hook) error {
		sort.SliceStable(hooks, func(i, j int) bool {
			if hooks[i].Weight != hooks[j].Weight {
				return hooks[i].Weight < hooks[j].Weight
			}
			return hooks[i].Name < hooks[j].Name
		})
		for _, h := range hooks {
			objs, err := manifest.Read(strings.NewReader(h.Manifest), chartDir+": "+h.Path)
			if err != nil {
				return err
			}
			out = append(out, objs...)
		}
		return nil
	}
	if err := addHooks(pre); err != nil {
		return nil, err
	}
	for _, doc := range splitDocs(rel.Manifest) {
		source := chartDir
		if m := sourceLine.FindStringSubmatch(doc); m != nil {
			source = chartDir + ": " + m[1]
		}
		objs, err := manifest.Read(strings.NewReader(doc), source)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	if err := addHooks(post); err != nil {
		return nil, err
	}
	return out, nil
}

var (
	sourceLine = regexp.MustCompile(`(?m)^# Source: (.*)$`)
	separator  = regexp.MustCompile(`(?m)^---[ \t]*$`)
)

// splitDocs splits a rendered manifest at its --- lines, so each document is read (and named in
// errors) by the template it came from.
func splitDocs(s string) []string {
	var out []string
	for _, d := range separator.Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
