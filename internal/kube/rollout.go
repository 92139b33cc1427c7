package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// RolloutOptions say how Rollout waits.
type RolloutOptions struct {
	Timeout time.Duration
	// Progress receives the status line when it changes, and each new problem of the pods once
	// (a container's waiting reason, an unschedulable pod, a warning event), as it appears.
	Progress func(string)
	// Since: events older than this are someone else's history, not shown (default: the call).
	Since time.Time
	// CrashFails ends the wait as soon as a container crashes repeatedly (CrashLoopBackOff),
	// with its exit code and last log lines. Without the agent (hotpod deploy) nothing will fix
	// it but a new build.
	CrashFails bool
}

// stuckAfter is how long a pod may show a reason that nothing on its own will cure (a bad
// image reference, a missing Secret key) before the wait gives up.
const stuckAfter = 20 * time.Second

// hopeless are the waiting reasons the cluster does not get over by itself.
var hopeless = map[string]string{
	"InvalidImageName":           "fix the image reference",
	"ErrImagePull":               "check that the cluster can pull from the registry (--default-repo) and that the image exists",
	"ImagePullBackOff":           "check that the cluster can pull from the registry (--default-repo) and that the image exists",
	"ErrImageNeverPull":          "the pod's imagePullPolicy is Never and the image is not on the node",
	"CreateContainerConfigError": "the container's settings cannot be used (the message says which: a missing Secret or ConfigMap, runAsNonRoot with an image that runs as root...): fix the manifest or create what it names",
	"CreateContainerError":       "the container cannot be created: the message says why",
	"RunContainerError":          "the container's command cannot start: the message says why",
}

// WaitRollout waits until the workloads among applied run their current template on all
// replicas, with Rollout's reporting; progress may be nil.
func (c *Client) WaitRollout(ctx context.Context, applied []Applied, timeout time.Duration, progress func(string)) error {
	return c.Rollout(ctx, applied, RolloutOptions{Timeout: timeout, Progress: progress})
}

// Rollout waits until every Deployment, StatefulSet, DaemonSet and bare Pod in applied is ready
// on its current template, telling what its pods go through meanwhile. It fails at once on a
// crash loop (with CrashFails) and after stuckAfter on a reason nothing will cure; on timeout
// the error carries what keeps the pods from running.
func (c *Client) Rollout(ctx context.Context, applied []Applied, o RolloutOptions) error {
	if o.Since.IsZero() {
		o.Since = time.Now().Add(-time.Second)
	}
	say := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	deadline := time.Now().Add(o.Timeout)
	last := ""
	told := map[string]bool{}
	stuckSince := map[string]time.Time{}
	for {
		var pending, problems []string
		var pods []corev1.Pod
		for _, a := range applied {
			ready, msg, sel, err := c.rolledOut(ctx, a)
			if err != nil {
				return err
			}
			if ready {
				continue
			}
			pending = append(pending, a.Kind+"/"+a.Name+": "+msg)
			ps, err := c.podsOf(ctx, a, sel)
			if err != nil {
				return err
			}
			pods = append(pods, ps...)
		}
		if len(pending) == 0 {
			return nil
		}
		now := time.Now()
		var fatal []string
		for _, p := range pods {
			for _, t := range podTrouble(p) {
				problems = append(problems, t.text)
				if t.crash && o.CrashFails {
					return fmt.Errorf("%s%s", t.text, c.lastLines(ctx, p, t.container))
				}
				if t.fix != "" {
					if stuckSince[t.text].IsZero() {
						stuckSince[t.text] = now
					}
					if now.Sub(stuckSince[t.text]) > stuckAfter {
						fatal = append(fatal, t.text+": "+t.fix)
					}
				}
			}
		}
		problems = append(problems, c.warnings(ctx, pods, o.Since)...)
		for _, p := range problems {
			if !told[p] {
				told[p] = true
				say(p)
			}
		}
		if len(fatal) > 0 {
			return fmt.Errorf("rollout stuck: %s", strings.Join(fatal, "; "))
		}
		if line := strings.Join(pending, "; "); line != last {
			say("waiting for rollout: " + line + phases(pods))
			last = line
		}
		if now.After(deadline) {
			why := ""
			if len(problems) > 0 {
				why = "\n  " + strings.Join(problems, "\n  ")
			}
			return fmt.Errorf("rollout not done after %s: %s%s", o.Timeout, strings.Join(pending, "; "), why)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// rolledOut says whether a is ready on its current template, how far it is, and which labels
// select its pods.
func (c *Client) rolledOut(ctx context.Context, a Applied) (bool, string, labels.Selector, error) {
	apps := c.Clientset.AppsV1()
	want := func(r *int32) int32 {
		if r == nil {
			return 1
		}
		return *r
	}
	switch a.Kind {
	case "Deployment":
		d, err := apps.Deployments(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		n, s := want(d.Spec.Replicas), d.Status
		sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.Replicas == n
		return ok, fmt.Sprintf("%d/%d ready", s.ReadyReplicas, n), sel, nil
	case "StatefulSet":
		d, err := apps.StatefulSets(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		n, s := want(d.Spec.Replicas), d.Status
		sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedReplicas == n && s.ReadyReplicas == n && s.CurrentRevision == s.UpdateRevision
		return ok, fmt.Sprintf("%d/%d ready", s.ReadyReplicas, n), sel, nil
	case "DaemonSet":
		d, err := apps.DaemonSets(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		s := d.Status
		sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		ok := d.Generation <= s.ObservedGeneration && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberReady == s.DesiredNumberScheduled
		return ok, fmt.Sprintf("%d/%d ready", s.NumberReady, s.DesiredNumberScheduled), sel, nil
	case "Pod":
		if a.GVR.Group != "" {
			break
		}
		p, err := c.Clientset.CoreV1().Pods(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", nil, err
		}
		if p.Status.Phase == corev1.PodSucceeded {
			return true, "", nil, nil
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, "", nil, nil
			}
		}
		return false, "not ready (" + string(p.Status.Phase) + ")", labels.Nothing(), nil
	}
	return true, "", nil, nil
}

// podsOf lists a workload's pods (the pod itself for a bare Pod).
func (c *Client) podsOf(ctx context.Context, a Applied, sel labels.Selector) ([]corev1.Pod, error) {
	if a.Kind == "Pod" {
		p, err := c.Clientset.CoreV1().Pods(a.Namespace).Get(ctx, a.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return []corev1.Pod{*p}, nil
	}
	if sel == nil || sel.Empty() {
		return nil, nil
	}
	l, err := c.Clientset.CoreV1().Pods(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// phases summarises what the pods are doing: " (pod a: ContainerCreating, pod b: Running)".
func phases(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return ""
	}
	var parts []string
	for _, p := range pods {
		state := string(p.Status.Phase)
		for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := s.State.Waiting; w != nil && w.Reason != "" {
				state = w.Reason
				break
			}
		}
		if state == string(corev1.PodRunning) {
			state = "running, not ready"
		}
		parts = append(parts, p.Name+": "+state)
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}

type trouble struct {
	text      string
	fix       string // set when nothing will cure it on its own
	crash     bool
	container string
}

func podTrouble(p corev1.Pod) []trouble {
	var out []trouble
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			out = append(out, trouble{text: fmt.Sprintf("pod %s: %s: %s", p.Name, cond.Reason, cond.Message)})
		}
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		w := s.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		t := trouble{text: fmt.Sprintf("pod %s container %s: %s: %s", p.Name, s.Name, w.Reason, w.Message),
			fix: hopeless[w.Reason], container: s.Name}
		if w.Reason == "CrashLoopBackOff" {
			t.crash = true
			if term := s.LastTerminationState.Terminated; term != nil {
				t.text = fmt.Sprintf("pod %s container %s keeps crashing (exit code %d, %d restarts)", p.Name, s.Name, term.ExitCode, s.RestartCount)
			}
		}
		out = append(out, t)
	}
	return out
}

// lastLines is the end of a crashed container's previous log, as "\n  | line" lines.
func (c *Client) lastLines(ctx context.Context, p corev1.Pod, container string) string {
	tail := int64(10)
	b, err := c.Clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Previous: true, TailLines: &tail}).DoRaw(ctx)
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\n  | " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n  | ")
}

// noise are warnings a cluster gives about every pod that change nothing for the app.
var noise = map[string]bool{"MissingClusterDNS": true}

// warnings are the warning events about pods since a time, one line each.
func (c *Client) warnings(ctx context.Context, pods []corev1.Pod, since time.Time) []string {
	names := map[string]map[string]bool{}
	for _, p := range pods {
		if names[p.Namespace] == nil {
			names[p.Namespace] = map[string]bool{}
		}
		names[p.Namespace][p.Name] = true
	}
	var out []string
	for ns, set := range names {
		evs, err := c.Clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning,involvedObject.kind=Pod"})
		if err != nil {
			continue
		}
		for _, e := range evs.Items {
			at := e.LastTimestamp.Time
			if at.IsZero() {
				at = e.EventTime.Time
			}
			if !set[e.InvolvedObject.Name] || at.Before(since) || noise[e.Reason] {
				continue
			}
			out = append(out, fmt.Sprintf("pod %s: %s: %s", e.InvolvedObject.Name, e.Reason, e.Message))
		}
	}
	sort.Strings(out)
	return out
}
