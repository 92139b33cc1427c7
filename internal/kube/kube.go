// Package kube is hotpod's access to a cluster through client-go: the client from the user's
// kubeconfig, port-forwards and exec into pods (WebSocket first, SPDY as fallback, as kubectl does).
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
)

// Client is a connection to one cluster, in one namespace by default.
type Client struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
	Namespace string
	Context   string
	selector  Selector // what Load was given, for WriteKubeconfig
}

// Selector names a cluster the way kubectl's flags do; an empty field takes kubectl's default.
type Selector struct {
	Kubeconfig string // one file (--kubeconfig); else the files $KUBECONFIG lists; else ~/.kube/config
	Context    string // --context; else the kubeconfig's current-context
	Namespace  string // -n; else the context's namespace; else "default"
}

// ErrNoCluster is wrapped by Load's error when no kubeconfig names a cluster.
var ErrNoCluster = errors.New("no cluster configured")

// Load reads the kubeconfig t names with kubectl's loading rules and checks that the API server
// answers.
func Load(ctx context.Context, t Selector) (*Client, error) {
	c, err := Open(t)
	if err != nil {
		return nil, err
	}
	return c, c.Check(ctx)
}

// Open reads the kubeconfig t names with kubectl's loading rules, without contacting the
// cluster (Check does).
func Open(t Selector) (*Client, error) {
	cc, raw, err := load(t)
	if err != nil {
		return nil, err
	}
	name := t.Context
	if name == "" {
		name = raw.CurrentContext
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig context %q: %w", name, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Config: cfg, Clientset: cs, Namespace: ns, Context: name, selector: t}, nil
}

// answerWithin bounds Check: an API server that accepts connections but never answers (a
// stopped VM behind a live load balancer) is reported, not waited on.
var answerWithin = 20 * time.Second

// Check asks the API server for its version, as kubectl version does, bounded by ctx (Ctrl-C)
// and answerWithin.
func (c *Client) Check(ctx context.Context) error {
	vctx, cancel := context.WithTimeout(ctx, answerWithin)
	defer cancel()
	if err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/version").Do(vctx).Error(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if vctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", answerWithin)
		}
		return fmt.Errorf("cluster %s (context %q) does not answer: %w: start it, or pick another with --context", c.Config.Host, c.Context, err)
	}
	return nil
}

// load reads the kubeconfig files and checks that the context t asks for exists, so that each
// way of naming no cluster gets its own message.
func load(t Selector) (clientcmd.ClientConfig, clientcmdapi.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = t.Kubeconfig
	if t.Kubeconfig != "" {
		if _, err := os.Stat(t.Kubeconfig); err != nil {
			return nil, clientcmdapi.Config{}, fmt.Errorf("--kubeconfig %s: %w: name your cluster's kubeconfig file", t.Kubeconfig, errors.Unwrap(err))
		}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: t.Context, Context: clientcmdapi.Context{Namespace: t.Namespace}})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, raw, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(raw.Contexts) == 0 {
		if os.Getenv("KUBERNETES_SERVICE_HOST") != "" && t.Kubeconfig == "" && t.Context == "" {
			return cc, raw, nil // inside a pod: client-go's in-cluster config, as kubectl
		}
		return nil, raw, noCluster(rules)
	}
	contexts := slices.Sorted(maps.Keys(raw.Contexts))
	switch {
	case t.Context != "" && raw.Contexts[t.Context] == nil:
		return nil, raw, fmt.Errorf("--context %s: the kubeconfig (%s) has no such context: use one of %s", t.Context, strings.Join(files(rules), ", "), strings.Join(contexts, ", "))
	case t.Context == "" && raw.CurrentContext == "":
		return nil, raw, fmt.Errorf("the kubeconfig (%s) has no current context: pick one of %s with --context or kubectl config use-context", strings.Join(files(rules), ", "), strings.Join(contexts, ", "))
	case t.Context == "" && raw.Contexts[raw.CurrentContext] == nil:
		return nil, raw, fmt.Errorf("the kubeconfig's current context %q does not exist: pick one of %s with --context or kubectl config use-context", raw.CurrentContext, strings.Join(contexts, ", "))
	}
	return cc, raw, nil
}

// noCluster says why no kubeconfig named a cluster: the files KUBECONFIG names that do not exist,
// or that there is none at all.
func noCluster(rules *clientcmd.ClientConfigLoadingRules) error {
	var missing []string
	for _, f := range files(rules) {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	switch {
	case rules.ExplicitPath != "":
		return fmt.Errorf("%w: --kubeconfig %s names no cluster", ErrNoCluster, rules.ExplicitPath)
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "" && len(missing) > 0:
		return fmt.Errorf("%w: KUBECONFIG names %s, which does not exist: point KUBECONFIG at your kubeconfig file, or unset it to use %s", ErrNoCluster, strings.Join(missing, ", "), clientcmd.RecommendedHomeFile)
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
		return fmt.Errorf("%w: KUBECONFIG (%s) names no cluster", ErrNoCluster, strings.Join(files(rules), ", "))
	case len(missing) > 0:
		return fmt.Errorf("%w: there is no %s: set KUBECONFIG or --kubeconfig to your cluster's kubeconfig file", ErrNoCluster, clientcmd.RecommendedHomeFile)
	}
	return fmt.Errorf("%w: %s names no cluster: set KUBECONFIG or --kubeconfig to your cluster's kubeconfig file", ErrNoCluster, clientcmd.RecommendedHomeFile)
}

// files are the kubeconfig files the rules read, in order.
func files(rules *clientcmd.ClientConfigLoadingRules) []string {
	if rules.ExplicitPath != "" {
		return []string{rules.ExplicitPath}
	}
	return rules.GetLoadingPrecedence()
}

// PortForward forwards a local port on 127.0.0.1 to port of pod until ctx ends or the connection
// breaks; it returns once the forward is ready, with the local port and a channel closed when the
// forward ends.
func (c *Client) PortForward(ctx context.Context, namespace, pod string, port int) (int, <-chan error, error) {
	u := c.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	dialer, err := c.dialer(u)
	if err != nil {
		return 0, nil, err
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward %s/%s: %w", namespace, pod, err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-done:
		return 0, nil, fmt.Errorf("port-forward %s/%s:%d: %w", namespace, pod, port, err)
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return 0, nil, fmt.Errorf("port-forward %s/%s: no local port: %v", namespace, pod, err)
	}
	return int(ports[0].Local), done, nil
}

func (c *Client) dialer(u *url.URL) (httpstream.Dialer, error) {
	transport, upgrader, err := spdy.RoundTripperFor(c.Config)
	if err != nil {
		return nil, err
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	ws, err := portforward.NewSPDYOverWebsocketDialer(u, c.Config)
	if err != nil {
		return nil, err
	}
	return portforward.NewFallbackDialer(ws, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	}), nil
}

// Exec runs command in container of pod and returns its stdout and stderr.
func (c *Client) Exec(ctx context.Context, namespace, pod, container string, command []string, stdin io.Reader) (string, string, error) {
	req := c.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdin: stdin != nil, Stdout: true, Stderr: true},
			scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(c.Config, http.MethodGet, req.URL().String())
	if err != nil {
		return "", "", err
	}
	sp, err := remotecommand.NewSPDYExecutor(c.Config, http.MethodPost, req.URL())
	if err != nil {
		return "", "", err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, sp, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", err
	}
	var stdout, stderr strings.Builder
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("exec %v in %s/%s: %w", command, namespace, pod, err)
	}
	return stdout.String(), stderr.String(), nil
}

// WriteKubeconfig writes the context c was loaded with, credentials inlined, with its server
// replaced: for a client that reaches the same API server by another address (a relay).
// serverName is the name its certificate is checked against: the original host.
func (c *Client) WriteKubeconfig(server, serverName, path string) error {
	t := c.selector
	t.Context = c.Context
	_, raw, err := load(t)
	if err != nil {
		return err
	}
	if c.Context != "" {
		raw.CurrentContext = c.Context
	}
	if err := clientcmdapi.MinifyConfig(&raw); err != nil {
		return err
	}
	if err := clientcmdapi.FlattenConfig(&raw); err != nil {
		return err
	}
	for _, cl := range raw.Clusters {
		cl.Server, cl.TLSServerName = server, serverName
	}
	return clientcmd.WriteToFile(raw, path)
}
