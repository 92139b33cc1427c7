package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/hotpod/hotpod/internal/build"
	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
)

// The flag groups, as ko's options: each is a struct whose AddFlags declares its flags, and a
// command composes the groups it needs, so that a flag is declared once and means the same in
// every command. Values are checked as they are parsed: a bad one is a usage error before any
// work starts.

// flagGroup remembers the flag set a group was declared on, to tell a value given on the
// command line from a default (hotpod.yaml fills in what the command line leaves out).
type flagGroup struct{ fs *pflag.FlagSet }

// given reports whether the flag name was on the command line.
func (g flagGroup) given(name string) bool { return g.fs != nil && g.fs.Changed(name) }

// KubeFlags are kubectl's flags that name the cluster and the namespace.
type KubeFlags struct {
	kube.Selector
	flagGroup
}

// AddFlags declares --kubeconfig, --context and -n/--namespace.
func (f *KubeFlags) AddFlags(fs *pflag.FlagSet) {
	f.addClusterFlags(fs)
	fs.StringVarP(&f.Namespace, "namespace", "n", "", "namespace (default: hotpod.yaml's, then the kubeconfig context's)")
}

// addClusterFlags declares --kubeconfig and --context, for commands that apply nothing to a
// namespace.
func (f *KubeFlags) addClusterFlags(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.Context, "context", "", "kubeconfig context (default: hotpod.yaml's, then the current one)")
}

// DefaultBaseImage is the base image of the images hotpod builds unless --base-image says.
const DefaultBaseImage = "gcr.io/distroless/static:nonroot"

// ImageFlags say where the built images go and what they start from.
type ImageFlags struct {
	Repo      string        // --default-repo
	Base      string        // --base-image; DefaultBaseImage when empty at AddFlags
	Platforms []v1.Platform // --platform, where AddPlatformFlag declared it; empty: the nodes'
	flagGroup
}

// AddFlags declares --default-repo and --base-image.
func (f *ImageFlags) AddFlags(fs *pflag.FlagSet) {
	f.fs = fs
	if f.Base == "" {
		f.Base = DefaultBaseImage
	}
	fs.StringVar(&f.Repo, "default-repo", defaultRepo(), "registry repository for built images (default: $HOTPOD_DEFAULT_REPO, then $KO_DOCKER_REPO, then hotpod.yaml's defaultRepo)")
	fs.StringVar(&f.Base, "base-image", f.Base, "base image, or scratch for an empty one (when not given: hotpod.yaml's baseImage, then this default)")
}

// AddPlatformFlag declares --platform.
func (f *ImageFlags) AddPlatformFlag(fs *pflag.FlagSet) {
	fs.Var(listOf(&f.Platforms, "os/arch[,...]", parsePlatform), "platform", "platforms to build for, comma-separated, e.g. linux/amd64,linux/arm64 (default: the cluster nodes')")
}

func defaultRepo() string {
	if r := os.Getenv("HOTPOD_DEFAULT_REPO"); r != "" {
		return r
	}
	return os.Getenv("KO_DOCKER_REPO")
}

func parsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("want os/arch, e.g. linux/amd64")
	}
	return *p, nil
}

// ManifestFlags name the manifests, as kubectl apply's -f and -k, and helm template's chart,
// --values and --set.
type ManifestFlags struct {
	Filenames      []string // files, directories, or - for stdin
	Kustomizations []string // kustomization directories
	Helm           string   // a chart's directory
	Values         []string // values files for the chart (hotpod.yaml's chart without Helm)
	Set, SetString []string // KEY=VALUE for the chart, as helm's --set and --set-string
}

// AddFlags declares -f/--filename, -k/--kustomize, --helm, --values, --set and --set-string.
func (f *ManifestFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVarP(&f.Filenames, "filename", "f", nil, "manifest file, directory (its *.yaml, *.yml, *.json), or - for stdin (repeatable)")
	fs.StringArrayVarP(&f.Kustomizations, "kustomize", "k", nil, "kustomization directory (repeatable)")
	fs.StringVar(&f.Helm, "helm", "", "a local Helm chart's directory, rendered as helm template renders it")
	fs.StringArrayVar(&f.Values, "values", nil, "a values file for the chart (--helm, or hotpod.yaml's), after its own (repeatable)")
	fs.Var(keyValues(&f.Set), "set", "a value for the chart by key path, typed as helm --set types it: KEY=VALUE (repeatable; a comma is part of the value)")
	fs.Var(keyValues(&f.SetString), "set-string", "a string value for the chart, as helm --set-string: KEY=VALUE (repeatable)")
}

// Empty reports whether no manifest was named (--values and --set alone name none: they go
// with hotpod.yaml's chart).
func (f *ManifestFlags) Empty() bool {
	return len(f.Filenames)+len(f.Kustomizations) == 0 && f.Helm == ""
}

// keyValues is a repeatable KEY=VALUE flag; a comma belongs to the value.
func keyValues(p *[]string) pflag.Value { return &keyValueList{p} }

type keyValueList struct{ p *[]string }

func (v *keyValueList) String() string { return strings.Join(*v.p, " ") }
func (v *keyValueList) Type() string   { return "KEY=VALUE" }
func (v *keyValueList) Set(s string) error {
	if k, _, ok := strings.Cut(s, "="); !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want KEY=VALUE, e.g. replicaCount=2 or image.tag=dev")
	}
	*v.p = append(*v.p, s)
	return nil
}

// Read reads the manifests (- from stdin, relative paths from dir), and the ko:// import paths
// they name.
func (f *ManifestFlags) Read(dir string, stdin io.Reader) ([]*manifest.Object, []string, error) {
	var objs []*manifest.Object
	var files []string
	for _, name := range f.Filenames {
		if name != "-" {
			files = append(files, inDir(dir, name))
			continue
		}
		if stdin == nil {
			return nil, nil, fmt.Errorf("-f -: no standard input")
		}
		in, err := manifest.Read(stdin, "stdin")
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, in...)
	}
	fromFiles, err := manifest.ReadPaths(files)
	if err != nil {
		return nil, nil, err
	}
	objs = append(objs, fromFiles...)
	for _, k := range f.Kustomizations {
		kobjs, err := manifest.Kustomize(inDir(dir, k))
		if err != nil {
			return nil, nil, err
		}
		objs = append(objs, kobjs...)
	}
	refs, err := manifest.KoRefs(objs)
	return objs, refs, err
}

// inDir is path as given when absolute, else relative to dir (kept short in messages when dir
// is the process's own working directory).
func inDir(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	if wd, err := os.Getwd(); err == nil && wd == dir {
		return path
	}
	return filepath.Join(dir, path)
}

// BuildFlags are the go build settings every building command takes.
type BuildFlags struct {
	build.Options
	flagGroup
	// debug (hotpod dev --debug) wins over every other source in For: -gcflags=all=-N -l, no
	// -s or -w, no -trimpath.
	debug bool
}

// AddFlags declares --ldflags, --gcflags, --tags and --post-build.
func (f *BuildFlags) AddFlags(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.LDFlags, "ldflags", "-s -w", "go build -ldflags; the default drops symbols and DWARF, the linker's biggest cost")
	fs.StringVar(&f.GCFlags, "gcflags", "", "go build -gcflags")
	fs.StringVar(&f.Tags, "tags", "", "go build -tags")
	fs.Var(&fieldsValue{&f.PostBuild}, "post-build", "a command run on each built binary, its path appended, before it ships (e.g. \"upx -q -1\"); its time counts as build time")
}

// AddQuickFlag declares --quick-build (hotpod dev: only its edits are built this way).
func (f *BuildFlags) AddQuickFlag(fs *pflag.FlagSet) {
	fs.BoolVar(&f.Quick, "quick-build", false, "build each edit by running the compiler and linker as the last go build did, without the go command, where that provably gives go build's binary (else go build; docs/config.md)")
}

// OutputFlags choose how a command reports.
type OutputFlags struct{ Format string }

// AddFlags declares -o/--output.
func (f *OutputFlags) AddFlags(fs *pflag.FlagSet) {
	f.Format = "text"
	fs.VarP(oneOf(&f.Format, "text", "json"), "output", "o", "text, or json: one JSON object per line")
}

// JSON reports whether -o json was asked for.
func (f OutputFlags) JSON() bool { return f.Format == "json" }

// For gives a service's build settings: the command line's flags where given, else b's (a
// service's, which hotpod.yaml made inherit the project's build:), else the flags' defaults.
func (f *BuildFlags) For(b config.Build) build.Options {
	o := f.Options
	o.Env = slices.Clone(o.Env)
	b.Apply(&o)
	if f.given("ldflags") {
		o.LDFlags = f.LDFlags
	}
	if f.given("gcflags") {
		o.GCFlags = f.GCFlags
	}
	if f.given("tags") {
		o.Tags = f.Tags
	}
	if f.given("post-build") {
		o.PostBuild = f.PostBuild
	}
	if f.given("quick-build") {
		o.Quick = f.Quick
	}
	if f.debug {
		// hotpod.yaml's flags too: a debugger needs the DWARF that -s and -w drop, and the
		// unoptimised code.
		o.GCFlags, o.KeepPaths = debugGCFlags, true
		o.Quick = false // proven with -trimpath only (TestQuickMatchesGoBuild)
		o.LDFlags = strings.Join(slices.DeleteFunc(strings.Fields(o.LDFlags), func(f string) bool { return f == "-s" || f == "-w" }), " ")
	}
	return o
}

// parseForward reads a --port-forward: LOCAL:REMOTE (any pod of the session), or
// LOCAL:KIND/NAME:REMOTE and KIND/NAME:PORT (the pods of one workload), as hotpod.yaml's
// portForward.
func parseForward(s string) (config.PortForward, error) {
	p, err := config.ParsePortForward(s)
	if err != nil {
		return p, fmt.Errorf("want LOCAL:REMOTE or LOCAL:KIND/NAME:REMOTE, e.g. 8080:8080 or 8080:deployment/api:8080 (LOCAL 0 picks a free port)")
	}
	return p, nil
}

// The flag values, each checked as it is parsed.

// enumValue is a string flag with a fixed set of values; its type, shown in the help, lists them.
type enumValue struct {
	p       *string
	allowed []string
}

func oneOf(p *string, allowed ...string) *enumValue {
	if *p == "" {
		*p = allowed[0]
	}
	return &enumValue{p, allowed}
}

func (v *enumValue) String() string { return *v.p }
func (v *enumValue) Type() string   { return strings.Join(v.allowed, "|") }
func (v *enumValue) Set(s string) error {
	for _, a := range v.allowed {
		if s == a {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(v.allowed))
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// durationValue is a duration flag whose error for a bare number says which unit to add: a
// timeout of "5" is 5 seconds meant, not a parse error to puzzle over.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string { return v.p.String() }
func (v durationValue) Type() string   { return "duration" }
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("a duration needs a unit: %ss (or %sms, %sm)", s, s, s)
		}
		return fmt.Errorf("want a duration such as 30s, 500ms or 2m")
	}
	*v.p = d
	return nil
}

func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(durationValue{p}, name, usage)
}

// listValue is a comma-separated, repeatable flag whose items are parsed as they come; the
// first use replaces the default.
type listValue[T any] struct {
	p     *[]T
	typ   string
	parse func(string) (T, error)
	raw   []string
	set   bool
}

func listOf[T any](p *[]T, typ string, parse func(string) (T, error)) *listValue[T] {
	return &listValue[T]{p: p, typ: typ, parse: parse}
}

// withDefault parses def as if given on the command line, for the help and for the value.
func (v *listValue[T]) withDefault(def string) *listValue[T] {
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("default %q: %v", def, err))
	}
	v.set = false
	return v
}

func (v *listValue[T]) String() string { return strings.Join(v.raw, ",") }
func (v *listValue[T]) Type() string   { return v.typ }
func (v *listValue[T]) Set(s string) error {
	if !v.set {
		*v.p, v.raw, v.set = nil, nil, true
	}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		x, err := v.parse(item)
		if err != nil && item != strings.TrimSpace(s) {
			return fmt.Errorf("%s: %w", item, err)
		} else if err != nil {
			return err
		}
		*v.p = append(*v.p, x)
		v.raw = append(v.raw, item)
	}
	return nil
}

// fieldsValue is a command line split on spaces (--post-build "upx -q -1").
type fieldsValue struct{ p *[]string }

func (v *fieldsValue) String() string     { return strings.Join(*v.p, " ") }
func (v *fieldsValue) Type() string       { return "command" }
func (v *fieldsValue) Set(s string) error { *v.p = strings.Fields(s); return nil }
