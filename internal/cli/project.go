package cli

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/hotpod/hotpod/internal/agentbin"
	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/config"
	"github.com/hotpod/hotpod/internal/helm"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/session"
)

// The one path of the cluster commands (dev and deploy): the project (flags and hotpod.yaml) →
// read the manifests (files, kustomize, a Helm chart) → resolve them against the cluster →
// what to build → build every image, in parallel as far as the CPUs allow → the commands
// rewrite (dev) or resolve (deploy) the objects with the images and apply them.

// project is what a command works on: the command line and hotpod.yaml merged, a flag given on
// the command line winning field by field (docs/config.md, Precedence).
type project struct {
	cfg *config.Config // nil without a hotpod.yaml
	// dir is where the go command runs and ko:// import paths are resolved: hotpod.yaml's
	// directory (so the file means the same from any directory below it), else the working one.
	dir       string
	manifests ManifestFlags // -f and -k: the command line's, or the file's when it names none
	helm      *helm.Options // a chart to render (--helm, or the file's), or nil
	kube      KubeFlags
	repo      string
	base      string // the ko:// images' base: --base-image, the file's baseImage, or the default
	baseGiven bool   // --base-image was given: it wins over a service's baseImage too
	build     *BuildFlags
	forwards  []config.PortForward
}

// projectFlags are the flag groups a command hands to loadProject; manifests nil for a command
// that reads none (build).
type projectFlags struct {
	manifests *ManifestFlags
	kube      *KubeFlags
	image     *ImageFlags
	build     *BuildFlags
	forwards  []config.PortForward
	// forwardsGiven: --port-forward was given; its list replaces the file's portForward.
	forwardsGiven bool
}

// loadProject finds hotpod.yaml (from env.Dir upwards) and merges it under the flags.
func loadProject(env Env, f projectFlags) (*project, error) {
	cfg, err := config.Find(env.Dir)
	if errors.Is(err, config.ErrNotFound) {
		cfg, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := &project{cfg: cfg, dir: env.Dir, kube: *f.kube, repo: f.image.Repo, base: f.image.Base,
		baseGiven: f.image.given("base-image"), build: f.build, forwards: f.forwards}
	if cfg == nil {
		return p, p.manifestsFrom(env, f.manifests)
	}
	p.dir = cfg.Dir
	if !f.kube.given("namespace") && cfg.Namespace != "" {
		p.kube.Namespace = cfg.Namespace
	}
	if !f.kube.given("context") && cfg.Context != "" {
		p.kube.Context = cfg.Context
	}
	// The developer's environment (HOTPOD_DEFAULT_REPO, KO_DOCKER_REPO) is the flag's default
	// and wins over the project's defaultRepo.
	if !f.image.given("default-repo") && p.repo == "" {
		p.repo = strings.TrimSuffix(cfg.DefaultRepo, "/")
	}
	if !p.baseGiven && cfg.BaseImage != "" {
		p.base = cfg.BaseImage
	}
	if !f.forwardsGiven {
		p.forwards = cfg.PortForward
	}
	return p, p.manifestsFrom(env, f.manifests)
}

// manifestsFrom takes the manifests the command line names (-f, -k, --helm), else the file's;
// --values and --set go with the chart of either.
func (p *project) manifestsFrom(env Env, m *ManifestFlags) error {
	if m == nil {
		return nil
	}
	p.manifests = ManifestFlags{Filenames: m.Filenames, Kustomizations: m.Kustomizations}
	switch {
	case m.Helm != "":
		p.helm = &helm.Options{Chart: inDir(env.Dir, m.Helm)}
	case m.Empty() && p.cfg != nil:
		fm := p.cfg.Manifests
		p.manifests = ManifestFlags{Filenames: fm.Files, Kustomizations: fm.Kustomize} // absolute paths
		if h := fm.Helm; h != nil {
			p.helm = &helm.Options{Chart: h.Chart, ValuesFiles: h.Values, Set: map[string]any{}, SetString: map[string]string{},
				Release: h.Release, Namespace: h.Namespace, NoHooks: h.NoHooks, SkipCRDs: h.SkipCRDs}
			for k, v := range h.Set {
				p.helm.Set[k] = v
			}
			for k, v := range h.SetString {
				p.helm.SetString[k] = v
			}
		}
	}
	if p.helm == nil {
		if len(m.Values)+len(m.Set)+len(m.SetString) > 0 {
			return usageErrorf("--values, --set and --set-string go with a Helm chart: name it with --helm CHART, or in hotpod.yaml's manifests.helm")
		}
		return nil
	}
	// The command line's values come after the file's, so they win, as later -f and --set do
	// with helm.
	for _, v := range m.Values {
		p.helm.ValuesFiles = append(p.helm.ValuesFiles, inDir(env.Dir, v))
	}
	if p.helm.Set == nil {
		p.helm.Set, p.helm.SetString = map[string]any{}, map[string]string{}
	}
	for _, kv := range m.Set {
		k, v, _ := strings.Cut(kv, "=")
		p.helm.Set[k] = v
		delete(p.helm.SetString, k)
	}
	for _, kv := range m.SetString {
		k, v, _ := strings.Cut(kv, "=")
		p.helm.SetString[k] = v
		delete(p.helm.Set, k)
	}
	return nil
}

// noManifests says what to give when neither the command line nor hotpod.yaml names
// manifests; or is the command's other way ("", or ", or --local").
func (p *project) noManifests(what, or string) error {
	if !p.manifests.Empty() || p.helm != nil {
		return nil
	}
	if p.cfg != nil {
		return usageErrorf("nothing to %s: %s names no manifests: give -f k8s/, -k overlay/ or --helm chart/, or set manifests: in it%s", what, p.cfg.Path, or)
	}
	return usageErrorf("nothing to %s: give manifests with -f k8s/, -k overlay/ or --helm chart/, or name them in a hotpod.yaml (hotpod init writes one)%s", what, or)
}

// source says where the project's settings come from, for the first line a command prints.
func (p *project) source() string {
	if p.cfg == nil {
		return ""
	}
	return "using " + p.cfg.Path
}

// toBuild is one image the manifests need built.
type toBuild struct {
	// key is how the manifests name it (manifest.Dev.Images): ko://<import path>, or an image
	// built elsewhere exactly as a container names it.
	key string
	// service is the loop the image's agents report to (manifest.Built.Service); "" is key.
	service string
	name    string // in hotpod's output; also the pushed image's name
	spec    appimage.Service
	svc     *config.Service // its hotpod.yaml entry, if any
}

// loop names the dev loop (and debugger) that t's agents belong to: its service, else its key.
func (t *toBuild) loop() string {
	if t.service != "" {
		return t.service
	}
	return t.key
}

// describe says what is built, for the line before the build.
func (t *toBuild) describe() string {
	if t.spec.Image == "" {
		return t.key
	}
	return fmt.Sprintf("%s with %s at %s", t.key, t.spec.Main, t.spec.Binary)
}

// images lists what objs need built: each ko:// reference, and each container image that a
// hotpod.yaml service built elsewhere claims (by repository; one build per image as written,
// so two tags of it are two images with the same binary).
func (p *project) images(objs []*manifest.Object) ([]*toBuild, error) {
	refs, err := manifest.KoRefs(objs)
	if err != nil {
		return nil, err
	}
	var out []*toBuild
	names := serviceNames(refs)
	for _, ref := range refs {
		key := manifest.KoPrefix + ref
		t := &toBuild{key: key, name: names[ref], spec: appimage.Service{Main: ref, Base: p.base}}
		b := config.Build{}
		if p.cfg != nil {
			b = p.cfg.Build
			if s := p.cfg.Service(key); s != nil {
				t.svc, t.name, t.service, b = s, s.Name, "", s.Build
				if s.BaseImage != "" && !p.baseGiven {
					t.spec.Base = s.BaseImage
				}
			}
		}
		opts := p.build.For(b)
		t.spec.Options = &opts
		t.spec.Name = strings.ReplaceAll(t.name, "/", "-")
		out = append(out, t)
	}
	if p.cfg == nil {
		return out, nil
	}
	for _, img := range manifest.ContainerImages(objs) {
		if strings.HasPrefix(img, manifest.KoPrefix) {
			continue
		}
		s := p.cfg.Service(img)
		if s == nil || s.Ko() {
			continue
		}
		opts := p.build.For(s.Build)
		out = append(out, &toBuild{key: img, service: s.Image, name: s.Name, svc: s,
			spec: appimage.Service{Main: s.Main, Image: img, Binary: s.Binary, Name: s.Name, Options: &opts}})
	}
	return out, nil
}

// unused names the services of hotpod.yaml that no manifest uses: a typo in an image, or a
// service of other manifests.
func (p *project) unused(images []*toBuild) []string {
	if p.cfg == nil {
		return nil
	}
	used := map[*config.Service]bool{}
	for _, t := range images {
		used[t.svc] = true
	}
	var out []string
	for i := range p.cfg.Services {
		if s := &p.cfg.Services[i]; !used[s] {
			out = append(out, fmt.Sprintf("service %s: no container of the manifests runs %s; not built", s.Name, s.Image))
		}
	}
	return out
}

// cluster is one cluster command's work on a project: its objects placed in the cluster and
// the images they need.
type cluster struct {
	p         *project
	env       Env
	k         *kube.Client
	targets   []kube.Target
	images    []*toBuild
	platforms []v1.Platform // the nodes'; read only when there is something to build
	// builds holds a slot per go build that runs, sized to the CPUs: the first builds here,
	// then the dev loops' (devloop.Loop.Builds).
	builds chan struct{}
}

// open reads the project's manifests, finds what they need built, loads the cluster and
// resolves the objects against it (kinds, namespaces, -n): everything that can be checked
// before a build is paid for. Files and kustomizations are read before the cluster is
// contacted; a Helm chart after (it renders with the session's namespace and the cluster's
// version).
func (p *project) open(ctx context.Context, env *Env, say func(string, ...any)) (*cluster, error) {
	objs, _, err := p.manifests.Read(env.Dir, env.Stdin)
	if err != nil {
		return nil, err
	}
	c := &cluster{p: p, env: *env, builds: make(chan struct{}, goruntime.GOMAXPROCS(0))}
	if p.helm == nil {
		if c.images, err = p.images(objs); err != nil {
			return nil, err
		}
		if len(c.images) > 0 && p.repo == "" {
			return nil, noRegistry(env, "")
		}
	}
	if c.k, err = loadKube(ctx, env, p.kube, func(s string) { say("%s", s) }); err != nil {
		return nil, err
	}
	if p.helm != nil {
		h := *p.helm
		if h.Namespace == "" {
			h.Namespace = c.k.Namespace
		}
		if h.KubeVersion, h.APIVersions, err = capabilities(c.k); err != nil {
			return nil, err
		}
		rendered, err := helm.Render(ctx, h)
		if err != nil {
			return nil, err
		}
		say("rendered %d objects of the chart %s (release namespace %s)", len(rendered), h.Chart, h.Namespace)
		objs = append(objs, rendered...)
		if c.images, err = p.images(objs); err != nil {
			return nil, err
		}
		if len(c.images) > 0 && p.repo == "" {
			return nil, noRegistry(env, "")
		}
	}
	for _, u := range p.unused(c.images) {
		say("%s", u)
	}
	if c.targets, err = c.k.Resolve(ctx, objs, namespaces(p.kube, c.k)); err != nil {
		return nil, err
	}
	if len(c.images) > 0 {
		if c.platforms, err = c.k.Platforms(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// capabilities are the cluster's version and API group versions, Helm's .Capabilities.
func capabilities(k *kube.Client) (string, []string, error) {
	v, err := k.Clientset.Discovery().ServerVersion()
	if err != nil {
		return "", nil, fmt.Errorf("the cluster's version, for the Helm chart: %w", err)
	}
	groups, err := k.Clientset.Discovery().ServerGroups()
	if err != nil {
		return "", nil, fmt.Errorf("the cluster's API groups, for the Helm chart: %w", err)
	}
	var apis []string
	for _, g := range groups.Groups {
		for _, gv := range g.Versions {
			apis = append(apis, gv.GroupVersion)
		}
	}
	return v.GitVersion, apis, nil
}

// imageBuilder is the image builder for p, on platform pl; done removes its work directory.
func (c *cluster) imageBuilder(command string, pl v1.Platform) (*appimage.Builder, func(), error) {
	env := c.env
	env.Dir = c.p.dir
	return imageBuilder(env, command, c.p.base, c.p.repo, c.p.build.Options, pl)
}

// build builds and pushes every image for b.Platform, as many at once as there are CPUs, and
// calls done with each as it is pushed (done may run concurrently). The first failure stops
// the other builds and is returned.
func (c *cluster) build(ctx context.Context, b *appimage.Builder, say func(string, ...any), done func(*toBuild, appimage.Result, time.Duration) error) error {
	return c.each(ctx, b, []v1.Platform{b.Platform}, func(ctx context.Context, t *toBuild) error {
		say("building %s for %s/%s%s", t.describe(), b.Platform.OS, b.Platform.Architecture, onBase(t))
		t0 := time.Now()
		res, err := b.BuildService(ctx, t.spec)
		if err != nil {
			return firstBuildFailed(err)
		}
		return done(t, res, time.Since(t0))
	})
}

// buildRefs builds and pushes every image for platforms (an index when there are several) and
// calls done with each image's reference.
func (c *cluster) buildRefs(ctx context.Context, b *appimage.Builder, platforms []v1.Platform, say func(string, ...any), done func(*toBuild, string)) error {
	var mu sync.Mutex
	return c.each(ctx, b, platforms, func(ctx context.Context, t *toBuild) error {
		say("building %s for %v%s", t.describe(), platforms, onBase(t))
		ref, err := buildFor(ctx, b, t.spec, platforms)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		done(t, ref)
		return nil
	})
}

func onBase(t *toBuild) string {
	if t.spec.Image != "" {
		return ""
	}
	return " on " + t.spec.Base
}

// each runs fn for every image, at most cap(c.builds) at once; the first error cancels the
// others and is the one returned.
func (c *cluster) each(ctx context.Context, b *appimage.Builder, platforms []v1.Platform, fn func(context.Context, *toBuild) error) error {
	// The agent first, once per platform: builds at once would each compile it into the same file.
	for _, pl := range platforms {
		if _, err := b.Agents.Path(ctx, agentbin.Platform{OS: pl.OS, Arch: pl.Architecture}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err })
		cancel()
	}
	for _, t := range c.images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case c.builds <- struct{}{}:
			case <-ctx.Done():
				return
			}
			err := fn(ctx, t)
			<-c.builds
			if err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}

// serviceFor is what to build for a main package built on its own (hotpod build): its
// hotpod.yaml service's image and settings, when a service builds it, else the project's.
func (p *project) serviceFor(importPath, dir string) (appimage.Service, *config.Service) {
	spec := appimage.Service{Main: importPath, Base: p.base}
	b := config.Build{}
	if p.cfg == nil {
		o := p.build.For(b)
		spec.Options = &o
		return spec, nil
	}
	b = p.cfg.Build
	var svc *config.Service
	for i := range p.cfg.Services {
		s := &p.cfg.Services[i]
		if s.Main == importPath || s.Main == dir {
			svc = s
			break
		}
	}
	if svc != nil {
		b = svc.Build
		spec.Name = svc.Name
		if svc.Ko() && svc.BaseImage != "" && !p.baseGiven {
			spec.Base = svc.BaseImage
		}
		if !svc.Ko() {
			spec.Image, spec.Binary = svc.Image, svc.Binary
		}
	}
	o := p.build.For(b)
	spec.Options = &o
	return spec, svc
}

// built is what the dev-mode rewrite needs of an image: appimage's record, with hotpod.yaml's
// agent settings of its service.
func (t *toBuild) built(res appimage.Result) manifest.Built {
	b := res.Built
	b.Service = t.service
	if s := t.svc; s != nil {
		b.Ready, b.StopSignal, b.Grace, b.StopPolicy = s.Ready, s.StopSignal, time.Duration(s.Grace), s.StopPolicy
	}
	return b
}

// workloadKinds are the kinds a port-forward may name, as hotpod.yaml's portForward spells them.
var workloadKinds = map[string]string{"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet", "pod": "Pod"}

// forward starts one port-forward: to any pod of the session (LOCAL:REMOTE), or to the pods of
// one workload (LOCAL:KIND/NAME:REMOTE). It returns the local address and what it forwards to.
func (c *cluster) forward(ctx context.Context, mgr *session.Manager, fw config.PortForward) (string, string, error) {
	if fw.Kind == "" {
		addr, err := mgr.Forward(ctx, fw.Local, fw.Remote)
		return addr, "the session's pods", err
	}
	w, err := c.workload(ctx, fw)
	if err != nil {
		return "", "", err
	}
	addr, err := mgr.ForwardWorkload(ctx, fw.Local, fw.Remote, w)
	return addr, w.Name + " in " + w.Namespace, err
}

// workload finds the pods fw names: the workload among the manifests (in whichever namespace
// they put it), else in the cluster's default namespace.
func (c *cluster) workload(ctx context.Context, fw config.PortForward) (session.Workload, error) {
	kind := workloadKinds[fw.Kind]
	w := session.Workload{Name: fw.Kind + "/" + fw.Name}
	var found []kube.Target
	for _, t := range c.targets {
		if t.Ref.Kind == kind && t.Ref.Name == fw.Name && (t.Ref.GVR.Group == "" || t.Ref.GVR.Group == "apps") {
			found = append(found, t)
		}
	}
	var obj map[string]any
	switch len(found) {
	case 0:
		w.Namespace = namespaces(c.p.kube, c.k).Default
		if w.Namespace == "" {
			w.Namespace = "default"
		}
		live, err := c.liveWorkload(ctx, kind, w.Namespace, fw.Name)
		if err != nil {
			return w, fmt.Errorf("port-forward %s: %s is not among the manifests, and in namespace %s: %w: name a workload of the session", fw, w.Name, w.Namespace, err)
		}
		obj = live
	case 1:
		w.Namespace, obj = found[0].Ref.Namespace, found[0].Obj.Object
	default:
		return w, fmt.Errorf("port-forward %s: the manifests have %s in %s and %s: keep one, or forward by LOCAL:REMOTE", fw, w.Name, found[0].Ref.Namespace, found[1].Ref.Namespace)
	}
	if kind == "Pod" {
		w.Pod = fw.Name
		return w, nil
	}
	raw, _, _ := unstructured.NestedMap(obj, "spec", "selector")
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return w, fmt.Errorf("port-forward %s: %s's spec.selector: %w", fw, w.Name, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || sel.Empty() {
		return w, fmt.Errorf("port-forward %s: %s has no usable spec.selector (%v): forward by LOCAL:REMOTE", fw, w.Name, err)
	}
	w.Selector = sel
	return w, nil
}

// liveWorkload reads a workload that is not among the manifests from the cluster.
func (c *cluster) liveWorkload(ctx context.Context, kind, ns, name string) (map[string]any, error) {
	var (
		o   any
		err error
	)
	get := metav1.GetOptions{}
	switch kind {
	case "Deployment":
		o, err = c.k.Clientset.AppsV1().Deployments(ns).Get(ctx, name, get)
	case "StatefulSet":
		o, err = c.k.Clientset.AppsV1().StatefulSets(ns).Get(ctx, name, get)
	case "DaemonSet":
		o, err = c.k.Clientset.AppsV1().DaemonSets(ns).Get(ctx, name, get)
	default:
		o, err = c.k.Clientset.CoreV1().Pods(ns).Get(ctx, name, get)
	}
	if err != nil {
		return nil, err
	}
	return runtime.DefaultUnstructuredConverter.ToUnstructured(o)
}
