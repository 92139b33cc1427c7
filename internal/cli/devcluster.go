package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hotpod/hotpod/internal/devloop"
	"github.com/hotpod/hotpod/internal/manifest"
	"github.com/hotpod/hotpod/internal/report"
	"github.com/hotpod/hotpod/internal/session"
	"github.com/hotpod/hotpod/internal/ship"
	"github.com/hotpod/hotpod/internal/watch"
)

func devCluster(ctx context.Context, env Env, f devFlags, method ship.Method) error {
	started := time.Now()
	rep := report.New(env.Stdout, f.output.JSON())
	logs := env.Stdout
	if rep.JSON() {
		logs = env.Stderr
	}
	objs, refs, err := f.manifests.Read(env.Dir, env.Stdin)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return errors.New("the manifests use no ko:// image: write image: ko://<import path of your main package> where hotpod should build")
	}
	if f.image.Repo == "" {
		return errors.New("no registry to push images to: set --default-repo, HOTPOD_DEFAULT_REPO or KO_DOCKER_REPO (the local test cluster's is 127.0.0.1:5000)")
	}
	k, err := loadKube(ctx, &env, f.kube)
	if err != nil {
		return err
	}
	ns := k.Namespace // -n, else the context's
	platforms, err := k.Platforms(ctx)
	if err != nil {
		return err
	}
	if len(platforms) > 1 {
		return fmt.Errorf("the cluster's nodes run %d platforms (%v): hotpod dev swaps one binary per service; pin the workloads to one architecture with a nodeSelector and a cluster of one platform", len(platforms), platforms)
	}
	ib, removeWork, err := imageBuilder(env, "hotpod-dev", f.image.Base, f.image.Repo, f.build.Options, platforms[0])
	if err != nil {
		return err
	}
	defer removeWork()
	work := ib.WorkDir
	sessionID, token := randomHex(4), randomHex(24)
	dev := manifest.Dev{Session: sessionID, TokenSecret: "hotpod-" + sessionID, Images: map[string]manifest.Built{}}
	loops := map[string]*devloop.Loop{}
	watchers := map[string]*watch.Watcher{}
	for _, ref := range refs {
		rep.Infof("", "building ko://%s for %s/%s on %s", ref, platforms[0].OS, platforms[0].Architecture, f.image.Base)
		t := time.Now()
		res, err := ib.Build(ctx, ref)
		if err != nil {
			return firstBuildFailed(err)
		}
		dev.Images[ref] = res.Built
		// Watch from here on: an edit saved during the rollout is the next iteration.
		w, err := watch.New(watchSet(res.Main), f.debounce)
		if err != nil {
			return err
		}
		go w.Run(ctx)
		watchers[ref] = w
		loop := &devloop.Loop{Service: res.Main.Name, Builder: res.Builder, Shipper: ship.New(method), Report: rep,
			WorkDir: work, ReadyTimeout: f.readyTimeout}
		loop.WatchSet = watchSetOf(env.Dir, ref, res.Builder)
		loop.Init(res.Binary, time.Since(t), started)
		loops[ref] = loop
		rep.Infof(res.Main.Name, "pushed %s", res.Built.Ref)
	}
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": dev.TokenSecret, "labels": map[string]any{manifest.SessionKey: sessionID}},
		"stringData": map[string]any{manifest.TokenKey: token},
	}}
	objs = append([]*manifest.Object{secret}, objs...)
	for _, o := range objs {
		if err := manifest.Rewrite(o, dev); err != nil {
			return err
		}
	}
	applied, err := k.Apply(ctx, ns, objs)
	defer func() {
		if f.keep {
			rep.Infof("", "kept the %d objects this session applied (--keep)", len(applied))
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := k.Delete(cctx, applied, time.Minute); err != nil {
			rep.Infof("", "cleanup: %v", err)
			return
		}
		rep.Infof("", "deleted the %d objects this session applied", len(applied))
	}()
	if err != nil {
		return err
	}
	rep.Infof("", "applied %d objects to namespace %s (session %s)", len(applied), ns, sessionID)
	if err := k.WaitRollout(ctx, applied, f.rolloutTimeout, func(s string) { rep.Infof("", "%s", s) }); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	mgr := &session.Manager{Kube: k, Namespace: ns, Session: sessionID, Token: token, Loops: loops, Report: rep, Logs: logs}
	go mgr.Run(ctx)
	for _, fw := range f.forwards {
		addr, err := mgr.Forward(ctx, fw.Local, fw.Remote)
		if err != nil {
			return err
		}
		rep.Infof("", "forwarding %s to port %d of the session's pods", addr, fw.Remote)
	}
	done := make(chan error, len(loops))
	for ref, loop := range loops {
		loop.Targets = func() []*devloop.Target { return mgr.Targets(ref) }
		go func() { done <- loop.Run(ctx, watchers[ref]) }()
		rep.Infof(loop.Service, "watching the sources: save a file to ship it, Ctrl-C to stop")
	}
	for range loops {
		if err := <-done; err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
