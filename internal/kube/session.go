package kube

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/hotpod/hotpod/internal/manifest"
)

// Marks a dev session leaves on what it applies, so that it, or the next session after it was
// killed, can put everything back.
const (
	// BeforeKey holds, on an object that existed before the session changed it, that object as
	// it was (gzip, base64): the restore needs nothing but the cluster.
	BeforeKey = "hotpod.dev/before"
	// On each session Secret: who runs the session, when it last said it is alive, and every
	// object it applies.
	HolderKey    = "hotpod.dev/holder"
	HeartbeatKey = "hotpod.dev/heartbeat"
	ObjectsKey   = "hotpod.dev/objects"

	heartbeatEvery = 10 * time.Second
	// A session whose heartbeat is older than this is gone (its hotpod was killed).
	staleAfter = 45 * time.Second
	// An annotation's value must stay well under the API server's 256 KiB for all annotations.
	maxBefore = 200 << 10
)

// Kinds a session keeps, even when it created them, unless told otherwise: deleting them takes
// data (a volume's, every object in a namespace, every custom resource of a CRD's kind) that may
// have been made during the session by the app or by somebody else.
var keptKinds = map[string]bool{"Namespace": true, "PersistentVolumeClaim": true, "CustomResourceDefinition": true}

// Change is what a dev session did to one object.
type Change struct {
	Ref Applied
	// Before is the object as it was; nil when the session created it.
	Before *unstructured.Unstructured
	// Touched: the session applied it (an object already as the manifests say is left alone).
	Touched bool
	// Replaced: deleted and created again, because the change touched an immutable field
	// (a Pod's spec, a Job's template).
	Replaced bool
}

// DevSession applies the objects of one `hotpod dev` and puts the cluster back as it was on
// exit: what the session created is deleted (but for keptKinds), what existed is restored.
// Every object it changes carries the session label; an object that existed carries its former
// self in BeforeKey, so that a later session can restore it when this one was killed.
type DevSession struct {
	Client *Client
	ID     string
	// Progress receives a line for each slow step (waits, restores); may be nil.
	Progress func(string)

	mu      sync.Mutex
	changes []Change
	secrets []Applied
	builds  map[string]Build // by service, as Published
	pubMu   sync.Mutex       // one Published at a time
}

// Holder names this process, as recorded on the session's Secrets.
func Holder() string {
	host, _ := os.Hostname()
	return strconv.Itoa(os.Getpid()) + "@" + host
}

// Secret is the session's Secret in namespace ns: the token the agents check, and the session's
// record (holder, heartbeat, the objects it applies). One goes to each namespace with dev pods.
func (s *DevSession) Secret(ns, name, token string, objects []Applied) *unstructured.Unstructured {
	list, _ := json.Marshal(objectRefs(objects))
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": ns,
			"labels": map[string]any{manifest.SessionKey: s.ID},
			"annotations": map[string]any{HolderKey: Holder(), HeartbeatKey: time.Now().UTC().Format(time.RFC3339),
				ObjectsKey: string(list)}},
		"stringData": map[string]any{manifest.TokenKey: token},
	}}
}

type objectRef struct {
	Group, Version, Resource, Kind, Namespace, Name string
}

func objectRefs(as []Applied) []objectRef {
	out := make([]objectRef, len(as))
	for i, a := range as {
		out[i] = objectRef{a.GVR.Group, a.GVR.Version, a.GVR.Resource, a.Kind, a.Namespace, a.Name}
	}
	return out
}

func (r objectRef) applied() Applied {
	return Applied{GVR: schema.GroupVersionResource{Group: r.Group, Version: r.Version, Resource: r.Resource},
		Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

func (s *DevSession) progress(format string, a ...any) {
	if s.Progress != nil {
		s.Progress(fmt.Sprintf(format, a...))
	}
}

// Apply applies targets in order. An object that does not exist is created; one that exists is
// recorded, then changed only if the manifests differ from it; one left by a session whose
// hotpod is gone is taken over (and what that session left elsewhere is put back first); one
// in use by a live session is refused. Whatever happens, Undo puts back what Apply did.
func (s *DevSession) Apply(ctx context.Context, targets []Target) error {
	dyn, err := s.Client.dynamic()
	if err != nil {
		return err
	}
	mine := map[Applied]bool{}
	for _, t := range targets {
		mine[t.Ref] = true
	}
	cleaned := map[string]bool{}
	for _, t := range targets {
		if t.Ref.Kind == "Secret" && t.Obj.GetLabels()[manifest.SessionKey] == s.ID {
			s.mu.Lock()
			s.secrets = append(s.secrets, t.Ref)
			s.mu.Unlock()
		}
		if err := s.applyOne(ctx, dyn, t, mine, cleaned); err != nil {
			return err
		}
	}
	return nil
}

func (s *DevSession) record(c Change) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, c)
	return len(s.changes) - 1
}

func (s *DevSession) update(i int, fn func(*Change)) {
	s.mu.Lock()
	fn(&s.changes[i])
	s.mu.Unlock()
}

func (s *DevSession) applyOne(ctx context.Context, dyn dynamic.Interface, t Target, mine map[Applied]bool, cleaned map[string]bool) error {
	ri := resource(dyn, t.Ref)
	live, err := ri.Get(ctx, t.Ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.record(Change{Ref: t.Ref, Touched: true})
		return s.Client.apply(ctx, dyn, t.Ref, withSession(t.Obj, s.ID, ""), false)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", t.Ref, err)
	}
	var before *unstructured.Unstructured
	if other := live.GetLabels()[manifest.SessionKey]; other != "" && other != s.ID {
		if err := s.Client.sessionGone(ctx, other, t.Ref); err != nil {
			return err
		}
		if !cleaned[other] {
			cleaned[other] = true
			s.progress("taking over from session %s, whose hotpod is gone: putting back what it left", other)
			if err := s.Client.cleanStale(ctx, dyn, other, mine); err != nil {
				return err
			}
		}
		if enc := live.GetAnnotations()[BeforeKey]; enc != "" {
			if before, err = decodeBefore(enc); err != nil {
				return fmt.Errorf("%s: the record of session %s: %w", t.Ref, other, err)
			}
		}
	} else if other == "" {
		before = clean(live)
	}
	if before == nil {
		// Created by a session that is gone: ours now, to delete on exit.
		i := s.record(Change{Ref: t.Ref, Touched: true})
		err := s.Client.apply(ctx, dyn, t.Ref, withSession(t.Obj, s.ID, ""), false)
		if err != nil && replaceable(t.Ref, err) {
			s.update(i, func(c *Change) { c.Replaced = true })
			return s.Client.replace(ctx, dyn, t.Ref, withSession(t.Obj, s.ID, ""))
		}
		return err
	}
	enc, err := encodeBefore(before)
	if err != nil {
		return err
	}
	if len(enc) > maxBefore {
		return fmt.Errorf("%s differs from the cluster and is too big (%d KB) for hotpod to keep a copy to restore it from: apply it yourself first (kubectl apply), then run hotpod dev", t.Ref, len(enc)>>10)
	}
	want := withSession(t.Obj, s.ID, enc)
	merged, err := s.Client.applied(ctx, dyn, t.Ref, want, true)
	if err != nil {
		return err
	}
	if sameContent(merged, live) {
		return nil // already as the manifests say: left alone, nothing to restore
	}
	i := s.record(Change{Ref: t.Ref, Before: before, Touched: true})
	// A server-side apply keeps fields other managers own that the manifest leaves out; a dev
	// container must lose its args and its liveness and startup probes, so the merged object
	// replaces the live one whole.
	devOnly(merged)
	merged.SetResourceVersion(live.GetResourceVersion())
	merged.SetManagedFields(nil)
	_, err = ri.Update(ctx, merged, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil && replaceable(t.Ref, err) {
		s.update(i, func(c *Change) { c.Replaced = true })
		return s.Client.replace(ctx, dyn, t.Ref, want)
	}
	if err != nil {
		return fmt.Errorf("apply %s: %w", t.Ref, err)
	}
	return s.Client.usable(ctx, dyn, t.Ref)
}

// Heartbeat tells, until ctx ends, that the session is alive: a later hotpod takes over a
// session only when its heartbeat stopped.
func (s *DevSession) Heartbeat(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(heartbeatEvery):
		}
		s.mu.Lock()
		secrets := append([]Applied(nil), s.secrets...)
		s.mu.Unlock()
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{
			HeartbeatKey: time.Now().UTC().Format(time.RFC3339)}}})
		for _, a := range secrets {
			_, _ = s.Client.Clientset.CoreV1().Secrets(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
	}
}

// UndoReport says what Undo did.
type UndoReport struct {
	Deleted, Restored, Kept, Left []Applied
}

func (r UndoReport) String() string {
	namespaces := map[string]bool{}
	for _, l := range [][]Applied{r.Deleted, r.Restored, r.Kept, r.Left} {
		for _, a := range l {
			if a.Namespace != "" {
				namespaces[a.Namespace] = true
			}
		}
	}
	name := func(a Applied) string {
		if len(namespaces) == 1 {
			return strings.ToLower(a.Kind) + "/" + a.Name
		}
		return a.String()
	}
	var parts []string
	add := func(what string, l []Applied) {
		if len(l) == 0 {
			return
		}
		names := make([]string, len(l))
		for i, a := range l {
			names[i] = name(a)
		}
		parts = append(parts, what+" "+strings.Join(names, ", "))
	}
	add("deleted", r.Deleted)
	add("restored", r.Restored)
	add("kept", r.Kept)
	add("left alone (changed by someone else meanwhile)", r.Left)
	if len(parts) == 0 {
		return "nothing to undo"
	}
	s := strings.Join(parts, "; ")
	if len(namespaces) == 1 {
		for ns := range namespaces {
			s += " (namespace " + ns + ")"
		}
	}
	return s
}

// Undo puts the cluster back as it was before Apply: newest change first, objects the session
// created are deleted (keptKinds are kept, without the session's marks), objects that existed
// get their former selves back, and restored workloads roll back to their own pods. An object
// that no longer carries the session's label was changed by somebody else meanwhile and is
// left alone. It waits up to timeout for deletions and rollbacks.
func (s *DevSession) Undo(ctx context.Context, timeout time.Duration) (UndoReport, error) {
	var rep UndoReport
	dyn, err := s.Client.dynamic()
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	changes := append([]Change(nil), s.changes...)
	s.mu.Unlock()
	var errs []error
	var gone, restored []Applied
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		if !c.Touched {
			continue
		}
		what, err := s.Client.undoOne(ctx, dyn, c, s.ID)
		switch {
		case err != nil:
			errs = append(errs, err)
		case what == "deleted":
			rep.Deleted = append(rep.Deleted, c.Ref)
			gone = append(gone, c.Ref)
		case what == "restored":
			rep.Restored = append(rep.Restored, c.Ref)
			restored = append(restored, c.Ref)
		case what == "kept":
			rep.Kept = append(rep.Kept, c.Ref)
		case what == "left":
			rep.Left = append(rep.Left, c.Ref)
		}
	}
	deadline := time.Now().Add(timeout)
	if len(gone) > 0 {
		s.progress("waiting for %d deleted objects to go", len(gone))
	}
	for _, a := range gone {
		for time.Now().Before(deadline) {
			if _, err := resource(dyn, a).Get(ctx, a.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				break
			}
			if sleep(ctx, 100*time.Millisecond) != nil {
				break
			}
		}
	}
	if len(restored) > 0 {
		s.progress("waiting for the restored workloads to roll back")
		if err := s.Client.WaitRollout(ctx, restored, time.Until(deadline), func(string) {}); err != nil {
			errs = append(errs, fmt.Errorf("restored, but not rolled back yet: %w", err))
		}
		s.Client.deleteSessionReplicaSets(ctx, restored, s.ID)
	}
	return rep, errors.Join(errs...)
}

// undoOne puts one object back; it says "deleted", "restored", "kept", "left" or "".
func (c *Client) undoOne(ctx context.Context, dyn dynamic.Interface, ch Change, session string) (string, error) {
	ri := resource(dyn, ch.Ref)
	live, err := ri.Get(ctx, ch.Ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if ch.Before == nil {
			return "", nil // never made, or already gone
		}
		// Deleted during the session: the user loses nothing, so it comes back.
		if _, err := ri.Create(ctx, forCreate(ch.Before), metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return "", fmt.Errorf("restore %s: %w", ch.Ref, err)
		}
		return "restored", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", ch.Ref, err)
	}
	if live.GetLabels()[manifest.SessionKey] != session {
		if ch.Before == nil && live.GetDeletionTimestamp() != nil {
			return "", nil
		}
		return "left", nil
	}
	if ch.Before == nil {
		if keptKinds[ch.Ref.Kind] {
			return "kept", c.unmark(ctx, ri, ch.Ref)
		}
		fg := metav1.DeletePropagationForeground
		if err := ri.Delete(ctx, ch.Ref.Name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete %s: %w", ch.Ref, err)
		}
		return "deleted", nil
	}
	if !ch.Replaced {
		b := ch.Before.DeepCopy()
		b.SetResourceVersion(live.GetResourceVersion())
		b.SetUID(live.GetUID())
		_, err = ri.Update(ctx, b, metav1.UpdateOptions{FieldManager: FieldManager})
		if err == nil {
			return "restored", nil
		}
		if !replaceable(ch.Ref, err) {
			return "", fmt.Errorf("restore %s: %w", ch.Ref, err)
		}
	}
	if err := c.replace(ctx, dyn, ch.Ref, forCreate(ch.Before)); err != nil {
		return "", fmt.Errorf("restore %s: %w", ch.Ref, err)
	}
	return "restored", nil
}

// unmark removes the session's label and record from an object that stays.
func (c *Client) unmark(ctx context.Context, ri dynamic.ResourceInterface, a Applied) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{manifest.SessionKey: nil},
		"annotations": map[string]any{BeforeKey: nil}}})
	if _, err := ri.Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("keep %s: %w", a, err)
	}
	return nil
}

// deleteSessionReplicaSets removes the ReplicaSets a session's pod template left behind in the
// history of the Deployments it restored.
func (c *Client) deleteSessionReplicaSets(ctx context.Context, restored []Applied, session string) {
	done := map[string]bool{}
	for _, a := range restored {
		if a.Kind != "Deployment" || done[a.Namespace] {
			continue
		}
		done[a.Namespace] = true
		_ = c.Clientset.AppsV1().ReplicaSets(a.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: manifest.SessionKey + "=" + session})
	}
}

// replace deletes an object, waits until it is gone, and creates o in its place.
func (c *Client) replace(ctx context.Context, dyn dynamic.Interface, a Applied, o *unstructured.Unstructured) error {
	ri := resource(dyn, a)
	fg := metav1.DeletePropagationForeground
	if err := ri.Delete(ctx, a.Name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("replace %s: %w", a, err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if _, err := ri.Get(ctx, a.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replace %s: still there two minutes after its deletion (a finalizer?)", a)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return c.apply(ctx, dyn, a, o, false)
}

// replaceable: the change touched a field that cannot change, on a kind whose objects can be
// made again (their spec is immutable by design).
func replaceable(a Applied, err error) bool {
	kind := a.GVR.Group + "/" + a.Kind
	return (kind == "/Pod" || kind == "batch/Job") && apierrors.IsInvalid(err)
}

// sessionGone returns nil when the session that left its label on a is no longer running, and
// an error naming it when it is.
func (c *Client) sessionGone(ctx context.Context, session string, a Applied) error {
	secrets, err := c.sessionSecrets(ctx, session, a.Namespace)
	if err != nil {
		return err
	}
	for _, sec := range secrets {
		holder := sec.Annotations[HolderKey]
		beat, _ := time.Parse(time.RFC3339, sec.Annotations[HeartbeatKey])
		if holderGone(holder) || time.Since(beat) > staleAfter {
			continue
		}
		return fmt.Errorf("%s is in use by hotpod session %s (process %s, alive %s ago): stop that hotpod first", a, session, holder, time.Since(beat).Round(time.Second))
	}
	return nil
}

// holderGone tells whether holder ("pid@host") names a process of this host that has ended.
func holderGone(holder string) bool {
	pid, host, ok := strings.Cut(holder, "@")
	me, _ := os.Hostname()
	n, err := strconv.Atoi(pid)
	if !ok || err != nil || host != me {
		return false
	}
	if n == os.Getpid() {
		return true // an earlier hotpod with our pid (a container restart): long gone
	}
	return syscall.Kill(n, 0) == syscall.ESRCH
}

// sessionSecrets finds a session's Secrets: in ns first, else in every namespace (where the
// user may list them).
func (c *Client) sessionSecrets(ctx context.Context, session, ns string) ([]corev1.Secret, error) {
	sel := metav1.ListOptions{LabelSelector: manifest.SessionKey + "=" + session}
	if ns != "" {
		l, err := c.Clientset.CoreV1().Secrets(ns).List(ctx, sel)
		if err == nil && len(l.Items) > 0 {
			return l.Items, nil
		}
	}
	l, err := c.Clientset.CoreV1().Secrets("").List(ctx, sel)
	if apierrors.IsForbidden(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the Secrets of hotpod session %s: %w", session, err)
	}
	return l.Items, nil
}

// cleanStale puts back what a session whose hotpod is gone left, but for the objects in skip
// (the new session applies those itself, from their records).
func (c *Client) cleanStale(ctx context.Context, dyn dynamic.Interface, session string, skip map[Applied]bool) error {
	secrets, err := c.sessionSecrets(ctx, session, "")
	if err != nil {
		return err
	}
	var refs []Applied
	seen := map[Applied]bool{}
	for _, sec := range secrets {
		var list []objectRef
		if err := json.Unmarshal([]byte(sec.Annotations[ObjectsKey]), &list); err != nil {
			return fmt.Errorf("the record of hotpod session %s (secret %s in %s): %w", session, sec.Name, sec.Namespace, err)
		}
		for _, r := range list {
			if a := r.applied(); !seen[a] {
				seen[a] = true
				refs = append(refs, a)
			}
		}
	}
	var errs []error
	for i := len(refs) - 1; i >= 0; i-- {
		a := refs[i]
		if skip[a] {
			continue
		}
		live, err := resource(dyn, a).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		ch := Change{Ref: a, Touched: true}
		if enc := live.GetAnnotations()[BeforeKey]; enc != "" {
			if ch.Before, err = decodeBefore(enc); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a, err))
				continue
			}
		}
		if _, err := c.undoOne(ctx, dyn, ch, session); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Settle puts back what dev sessions whose hotpod is gone left on targets (and elsewhere), and
// refuses targets a live session is using: for commands that apply without a session
// (hotpod deploy), which would otherwise mix their objects with a session's.
func (c *Client) Settle(ctx context.Context, targets []Target) error {
	dyn, err := c.dynamic()
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, t := range targets {
		live, err := resource(dyn, t.Ref).Get(ctx, t.Ref.Name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		s := live.GetLabels()[manifest.SessionKey]
		if s == "" || done[s] {
			continue
		}
		if err := c.sessionGone(ctx, s, t.Ref); err != nil {
			return err
		}
		done[s] = true
		if err := c.cleanStale(ctx, dyn, s, nil); err != nil {
			return err
		}
	}
	return nil
}

// withSession is o with the session's label and, for an object that existed, its record.
func withSession(o *unstructured.Unstructured, session, before string) *unstructured.Unstructured {
	o = o.DeepCopy()
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[manifest.SessionKey] = session
	o.SetLabels(l)
	if before != "" {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[BeforeKey] = before
		o.SetAnnotations(a)
	}
	return o
}

// clean is live as it is recorded: without status and what the server sets anew on a write.
func clean(live *unstructured.Unstructured) *unstructured.Unstructured {
	o := live.DeepCopy()
	delete(o.Object, "status")
	unstructured.RemoveNestedField(o.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(o.Object, "metadata", "generation")
	unstructured.RemoveNestedField(o.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(o.Object, "metadata", "selfLink")
	return o
}

// forCreate is a recorded object made fit to be created again.
func forCreate(before *unstructured.Unstructured) *unstructured.Unstructured {
	o := before.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "metadata", "uid")
	unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(o.Object, "metadata", "ownerReferences")
	switch o.GetKind() {
	case "Pod":
		unstructured.RemoveNestedField(o.Object, "spec", "nodeName")
	case "Job":
		// The Job controller sets these and refuses them on a new Job.
		unstructured.RemoveNestedField(o.Object, "spec", "selector")
		for _, k := range []string{"controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"} {
			unstructured.RemoveNestedField(o.Object, "spec", "template", "metadata", "labels", k)
		}
	}
	return o
}

// sameContent compares two versions of an object on what a user wrote, not on what the server
// keeps for itself.
func sameContent(a, b *unstructured.Unstructured) bool {
	norm := func(o *unstructured.Unstructured) map[string]any {
		o = clean(o)
		unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(o.Object, "metadata", "labels", manifest.SessionKey)
		unstructured.RemoveNestedField(o.Object, "metadata", "annotations", BeforeKey)
		if l, _, _ := unstructured.NestedMap(o.Object, "metadata", "labels"); len(l) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", "labels")
		}
		if l, _, _ := unstructured.NestedMap(o.Object, "metadata", "annotations"); len(l) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", "annotations")
		}
		return o.Object
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// devOnly strips from each container under the agent what a server-side apply kept of the
// original: its args (the agent's command carries them) and its liveness and startup probes.
func devOnly(o *unstructured.Unstructured) {
	for _, t := range manifest.PodTemplates(o) {
		for _, f := range []string{"initContainers", "containers"} {
			l, _ := t.Spec[f].([]any)
			for _, c := range l {
				cm, _ := c.(map[string]any)
				cmd, _ := cm["command"].([]any)
				if len(cmd) > 0 && cmd[0] == manifest.AgentPath {
					delete(cm, "args")
					delete(cm, "livenessProbe")
					delete(cm, "startupProbe")
				}
			}
		}
	}
}

func encodeBefore(o *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(o.Object)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b) //nolint:errcheck // a bytes.Buffer does not fail
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func decodeBefore(s string) (*unstructured.Unstructured, error) {
	z, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", BeforeKey, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", BeforeKey, err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", BeforeKey, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", BeforeKey, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
