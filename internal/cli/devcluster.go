package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hotpod/hotpod/internal/appimage"
	"github.com/hotpod/hotpod/internal/debugport"
	"github.com/hotpod/hotpod/internal/delta"
	"github.com/hotpod/hotpod/internal/devloop"
	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/session"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/watch"
)

func devCluster(ctx context.Context, env Env, f devFlags, p *project, method ship.Method) error {
	started := time.Now()
	rep := report.New(env.Stdout, f.output.JSON())
	logs := env.Stdout
	if rep.JSON() {
		logs = env.Stderr
	}
	say := func(format string, a ...any) { rep.Infof("", format, a...) }
	if s := p.source(); s != "" {
		say("%s", s)
	}
	// Everything that can be checked is checked before the first build: kinds, namespaces, -n
	// (and the flags, when they were parsed).
	c, err := p.open(ctx, &env, say)
	if err != nil {
		return err
	}
	if len(c.images) == 0 {
		return errors.New("the manifests use no image hotpod builds: write image: ko://<import path of your main package> where hotpod should build, or list an image built elsewhere under services: in hotpod.yaml (with main: and binary:)")
	}
	k, targets, platforms := c.k, c.targets, c.platforms
	if len(platforms) > 1 {
		return fmt.Errorf("the cluster's nodes run %d platforms (%v): hotpod dev swaps one binary per service; pin the workloads to one architecture with a nodeSelector and a cluster of one platform", len(platforms), platforms)
	}
	ib, removeWork, err := c.imageBuilder("hotpod-dev", platforms[0])
	if err != nil {
		return err
	}
	defer removeWork()
	ib.Progress = func(s string) { rep.Infof("", "%s", s) }
	sessionID, token := randomHex(4), randomHex(24)
	dev := manifest.Dev{Session: sessionID, TokenSecret: "hotpod-" + sessionID, Images: map[string]manifest.Built{}, Debug: f.debug}
	var dbg *debugport.Set // --debug
	if f.debug {
		dbg = &debugport.Set{Delve: debugDelve(ctx, rep, platforms[0]), Report: rep}
	}
	loops := map[string]*devloop.Loop{}
	watchers := map[string]*watch.Watcher{}
	var closeEdits []func()
	defer func() {
		for _, c := range closeEdits {
			c()
		}
	}()
	var mu sync.Mutex // the images are built at once
	err = c.build(ctx, ib, say, func(t *toBuild, res appimage.Result, took time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		dev.Images[t.key] = t.built(res)
		key := t.loop()
		rep.Infof(t.name, "pushed %s", res.Built.Ref)
		if loops[key] != nil {
			return nil // another tag of the same service's image: its loop swaps both
		}
		// Watch from here on: an edit saved during the rollout is the next iteration.
		w, err := watch.New(watchSet(res.Main), f.debounce)
		if err != nil {
			return err
		}
		go w.Run(ctx)
		watchers[key] = w
		edits, closeQuick := editBuilder(res.Builder)
		closeEdits = append(closeEdits, closeQuick)
		loop := &devloop.Loop{Service: t.name, Builder: edits, Shipper: ship.New(method), Report: rep, KoData: res.KoData,
			WorkDir: filepath.Join(ib.WorkDir, strconv.Itoa(len(loops))), ReadyTimeout: f.readyTimeout, Builds: c.builds}
		if err := os.MkdirAll(loop.WorkDir, 0o700); err != nil {
			return err
		}
		loop.WatchSet = watchSetOf(p.dir, t.spec.Main, res.Builder, true)
		loop.Init(res.Binary, took, started)
		loops[key] = loop
		return nil
	})
	if err != nil {
		return err
	}
	if dbg != nil {
		// Consecutive ports, one per service, in the order of the manifests' images.
		port := f.debugPort
		for _, t := range c.images {
			if dbg.Has(t.loop()) {
				continue // another tag of the same service's image
			}
			if err := dbg.Listen(t.loop(), t.name, port); err != nil {
				return err
			}
			port++
		}
		dbg.Serve(ctx) // starts a server per port and returns
	}
	podNamespaces := []string{}
	for _, t := range targets {
		if err := manifest.Rewrite(t.Obj, dev); err != nil {
			return err
		}
		if hasAgents(t.Obj) && !slices.Contains(podNamespaces, t.Ref.Namespace) {
			podNamespaces = append(podNamespaces, t.Ref.Namespace)
		}
	}
	sess := &kube.DevSession{Client: k, ID: sessionID, Progress: func(s string) { rep.Infof("", "%s", s) }}
	refsOf := func(ts []kube.Target) []kube.Applied {
		out := make([]kube.Applied, len(ts))
		for i, t := range ts {
			out[i] = t.Ref
		}
		return out
	}
	var secrets []kube.Target
	for _, ns := range podNamespaces {
		ref := kube.Applied{GVR: schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, Kind: "Secret", Namespace: ns, Name: dev.TokenSecret}
		secrets = append(secrets, kube.Target{Ref: ref})
	}
	all := kube.Order(append(secrets, targets...))
	for i := range secrets {
		secrets[i].Obj = sess.Secret(secrets[i].Ref.Namespace, dev.TokenSecret, token, refsOf(all))
	}
	all = kube.Order(append(secrets, targets...))
	left := env.Interrupt.Leave(fmt.Sprintf("the objects of session %s, in dev mode (the next hotpod dev on these manifests takes them over and puts them back)", sessionID))
	defer func() {
		defer left()
		if f.keep {
			rep.Infof("", "kept the session's objects in dev mode (--keep); the next hotpod dev on these manifests takes them over")
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		r, err := sess.Undo(cctx, 2*time.Minute)
		if err != nil {
			rep.Infof("", "cleanup: %s; not done: %v", r, err)
			return
		}
		rep.Infof("", "cleanup: %s", r)
		if len(r.Kept) > 0 {
			var kept []string
			for _, a := range r.Kept {
				kept = append(kept, a.String())
			}
			rep.Infof("", "kept what this session created that holds data (%s): kubectl delete it when you no longer need it", strings.Join(kept, ", "))
		}
	}()
	if err := sess.Apply(ctx, all); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	go sess.Heartbeat(ctx)
	rep.Infof("", "applied %d objects (session %s)", len(all), sessionID)
	// The session's Secrets say which build each service is on, for hotpod status: the image's
	// binary now, each shipped build from then on.
	publish := func(key string, it int, h delta.Hash) {
		if err := sess.Published(ctx, key, h.String(), it); err != nil && ctx.Err() == nil {
			rep.Infof("", "hotpod status will not know the current build: %v", err)
		}
	}
	for key, loop := range loops {
		publish(key, 1, loop.Current())
		loop.OnShipped = func(it int, h delta.Hash) { publish(key, it, h) }
	}
	// The session follows the pods from their start, while they roll out: their logs, an app
	// that crashes at start, a probe that fails, and an edit saved meanwhile all show at once.
	mgr := &session.Manager{Kube: k, Namespaces: podNamespaces, Session: sessionID, Token: token, Loops: loops, Report: rep, Logs: logs}
	if dbg != nil {
		mgr.Debug = dbg
	}
	go mgr.Run(ctx)
	for _, fw := range p.forwards {
		addr, to, err := c.forward(ctx, mgr, fw)
		if err != nil {
			return err
		}
		rep.Forwarding(report.Forwarding{Local: addr, Remote: fw.Remote, To: to})
	}
	done := make(chan error, len(loops))
	for key, loop := range loops {
		loop.Targets = func() []*devloop.Target { return mgr.Targets(key) }
		go func() { done <- loop.Run(ctx, watchers[key]) }()
	}
	err = k.Rollout(ctx, refsOf(all), kube.RolloutOptions{Timeout: f.rolloutTimeout, Since: started, CrashFails: true,
		Progress: func(s string) { rep.Infof("", "%s", s) }})
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil && len(mgr.Pods()) == 0:
		return err
	case err != nil:
		// The agents run: the app is what is not ready, and the next edit can fix it.
		rep.Infof("", "%v; the session goes on: save a fix to ship it", err)
	default:
		rep.Infof("", "rolled out in %s: watching the sources: save a file to ship it, Ctrl-C to stop", time.Since(started).Round(100*time.Millisecond))
	}
	for range loops {
		if err := <-done; err != nil {
			return err
		}
	}
	return nil
}

// serviceNames names each import path by its last element, or by as many of its last
// elements as tell it from the others (a/cmd/server and b/cmd/server: a/cmd/server, b/cmd/server).
func serviceNames(refs []string) map[string]string {
	out := map[string]string{}
	for n := 1; len(out) < len(refs); n++ {
		count := map[string]int{}
		suffix := func(ref string) string {
			parts := strings.Split(ref, "/")
			return strings.Join(parts[max(0, len(parts)-n):], "/")
		}
		for _, r := range refs {
			count[suffix(r)]++
		}
		for _, r := range refs {
			if _, done := out[r]; !done && (count[suffix(r)] == 1 || suffix(r) == r) {
				out[r] = suffix(r)
			}
		}
	}
	return out
}

// namespaces is where objects without a namespace go: -n, else hotpod.yaml's, else the
// kubeconfig context's. Only -n refuses manifests that name another namespace, as kubectl's
// does: hotpod.yaml's namespace is a default.
func namespaces(f KubeFlags, k *kube.Client) kube.Namespaces {
	return kube.Namespaces{Default: k.Namespace, Explicit: f.Namespace != "" && (f.fs == nil || f.given("namespace"))}
}

// hasAgents says whether o has a pod template that runs an agent.
func hasAgents(o *manifest.Object) bool {
	for _, t := range manifest.PodTemplates(o) {
		if ann, _ := t.Meta["annotations"].(map[string]any); ann[manifest.AgentsKey] != nil {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
