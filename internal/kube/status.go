package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotpod/hotpod/internal/manifest"
)

// BuildsKey, on each session Secret, is the build each service of the session is on: JSON
// {service: Build}, service as the pods' agents name it (manifest.Agent.Service). The running
// session writes it each time a build has shipped (Published); `hotpod status` compares it with
// what each agent runs.
const BuildsKey = "hotpod.dev/builds"

// Build is the build a session brought its pods to.
type Build struct {
	SHA256    string    `json:"sha256"`
	Iteration int       `json:"iteration"` // the edit: 1 is the image's binary
	At        time.Time `json:"at"`
}

// Published records on every session Secret that service's current build is sha256, made by
// iteration: the build every pod of the service should run now.
func (s *DevSession) Published(ctx context.Context, service, sha256 string, iteration int) error {
	// One publication at a time: the patches carry the whole map, and the last one written must
	// be the newest.
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	if s.builds == nil {
		s.builds = map[string]Build{}
	}
	s.builds[service] = Build{SHA256: sha256, Iteration: iteration, At: time.Now().UTC().Truncate(time.Second)}
	b, err := json.Marshal(s.builds)
	secrets := append([]Applied(nil), s.secrets...)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{BuildsKey: string(b)}}})
	for _, a := range secrets {
		if _, err := s.Client.Clientset.CoreV1().Secrets(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("record the build of %s on secret %s/%s: %w", service, a.Namespace, a.Name, err)
		}
	}
	return nil
}

// SessionRecord is what a dev session's Secrets say of it.
type SessionRecord struct {
	ID     string `json:"session"`
	Holder string `json:"holder"` // pid@host of its hotpod
	// Heartbeat is when its hotpod last said it runs; Alive says it still does (the heartbeat is
	// recent and the holder, when it is a process of this host, exists).
	Heartbeat  time.Time        `json:"heartbeat"`
	Alive      bool             `json:"alive"`
	Namespaces []string         `json:"namespaces"` // where its Secrets and dev pods are
	Objects    []Applied        `json:"-"`
	Builds     map[string]Build `json:"builds"`
	Token      string           `json:"-"` // the agents' token
}

// Sessions reads the records of the dev sessions that have Secrets in namespace ns, or in any
// namespace when ns is "", ordered by ID.
func (c *Client) Sessions(ctx context.Context, ns string) ([]SessionRecord, error) {
	l, err := c.Clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: manifest.SessionKey})
	if err != nil {
		where := "namespace " + ns
		if ns == "" {
			where = "all namespaces"
		}
		if apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("list hotpod's session Secrets in %s: %w (ask for -n NAMESPACE where you may list Secrets)", where, err)
		}
		return nil, fmt.Errorf("list hotpod's session Secrets in %s: %w", where, err)
	}
	byID := map[string]*SessionRecord{}
	for _, sec := range l.Items {
		id := sec.Labels[manifest.SessionKey]
		if sec.Name != "hotpod-"+id { // a user's object that a session labelled, not its record
			continue
		}
		r := byID[id]
		if r == nil {
			r = &SessionRecord{ID: id, Builds: map[string]Build{}}
			byID[id] = r
		}
		if err := r.add(sec); err != nil {
			return nil, err
		}
	}
	out := make([]SessionRecord, 0, len(byID))
	for _, r := range byID {
		r.Alive = !holderGone(r.Holder) && time.Since(r.Heartbeat) <= staleAfter
		sort.Strings(r.Namespaces)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// add folds one of the session's Secrets into r: the newest heartbeat, every namespace, the
// objects and builds (each Secret has the same, but for a write under way).
func (r *SessionRecord) add(sec corev1.Secret) error {
	ann := sec.Annotations
	r.Namespaces = append(r.Namespaces, sec.Namespace)
	if beat, err := time.Parse(time.RFC3339, ann[HeartbeatKey]); err == nil && beat.After(r.Heartbeat) {
		r.Heartbeat, r.Holder = beat, ann[HolderKey]
	}
	if r.Holder == "" {
		r.Holder = ann[HolderKey]
	}
	if r.Token == "" {
		r.Token = string(sec.Data[manifest.TokenKey])
	}
	if r.Objects == nil && ann[ObjectsKey] != "" {
		var list []objectRef
		if err := json.Unmarshal([]byte(ann[ObjectsKey]), &list); err != nil {
			return fmt.Errorf("the record of hotpod session %s (secret %s in %s): %w", r.ID, sec.Name, sec.Namespace, err)
		}
		for _, o := range list {
			r.Objects = append(r.Objects, o.applied())
		}
	}
	if s := ann[BuildsKey]; s != "" {
		var builds map[string]Build
		if err := json.Unmarshal([]byte(s), &builds); err != nil {
			return fmt.Errorf("annotation %s of secret %s in %s: %w", BuildsKey, sec.Name, sec.Namespace, err)
		}
		for svc, b := range builds {
			if b.At.After(r.Builds[svc].At) || r.Builds[svc].SHA256 == "" {
				r.Builds[svc] = b
			}
		}
	}
	return nil
}
