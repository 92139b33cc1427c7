package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// How each strategy's edits are seen to land: the app answering GET /called with the edit's
// stamp, through a port-forward, and the app's own log line as a cross-check.

// answerTimeout bounds one edit: a rollout of a big image on a slow link takes a while.
const answerTimeout = 5 * time.Minute

// afterEdit is the app's log line that says how long after the edit's stamp it listened.
var afterEdit = regexp.MustCompile(`([0-9]+(?:\.[0-9]+)?) ms after the edit`)

// appSays is the app's own edit→listening from the last such line of pod's log (0 if none).
func (c Config) appSays(ctx context.Context, ns, pod string) float64 {
	logs, err := c.Kube.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return 0
	}
	m := afterEdit.FindAllStringSubmatch(string(logs), -1)
	if len(m) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return v
}

// readyPod waits for a Ready pod running image and returns its name.
func (c Config) readyPod(ctx context.Context, ns, selector, image string) (string, error) {
	deadline := time.Now().Add(answerTimeout)
	for time.Now().Before(deadline) {
		pods, err := c.Kube.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return "", err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || len(p.Spec.Containers) == 0 || p.Spec.Containers[0].Image != image {
				continue
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					return p.Name, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("no ready pod runs %s after %s", image, answerTimeout)
}

// tail keeps the last lines of a stream for error messages: one goroutine adds what hotpod
// writes while another may be reporting an error with them.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 10 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// answerThrough opens a port-forward to pod's app and waits for it to answer stamp. A
// port-forward ends when a connection through it is refused (the app not listening yet): then
// another is opened, until the answer or the timeout.
func (c Config) answerThrough(ctx context.Context, ns, pod string, stamp int64) (time.Time, error) {
	deadline := time.Now().Add(answerTimeout)
	hot := make(chan struct{}) // the new code should be up: poll tightly
	close(hot)
	for {
		fctx, cancel := context.WithCancel(ctx)
		port, ended, err := c.Kube.PortForward(fctx, ns, pod, 8080)
		if err != nil {
			cancel()
			return time.Time{}, err
		}
		go func() {
			select {
			case <-ended:
				cancel()
			case <-fctx.Done():
			}
		}()
		at, err := awaitStamp(fctx, fmt.Sprintf("http://127.0.0.1:%d", port), stamp, time.Until(deadline), hot)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return at, err
		}
	}
}

// awaitStamp polls GET base/called until the app answers stamp, and returns when it did: every
// 100 ms until hot is closed, then every 5 ms.
func awaitStamp(ctx context.Context, base string, stamp int64, timeout time.Duration, hot <-chan struct{}) (time.Time, error) {
	want := strconv.FormatInt(stamp, 10)
	// A new connection per poll: a kept-alive one may point at the process being replaced.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/called")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = strings.TrimSpace(string(b))
			if last == want {
				return time.Now(), nil
			}
		} else {
			last = err.Error()
		}
		wait := 100 * time.Millisecond
		if hot == nil {
			wait = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-hot:
			hot = nil // it just turned hot: poll now, then tightly
		case <-time.After(wait):
		}
	}
	return time.Time{}, fmt.Errorf("the new code did not answer within %s (last answer: %s)", timeout, last)
}
