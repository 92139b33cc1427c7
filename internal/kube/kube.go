// Package kube is hotpod's access to a cluster through client-go: the client from the user's
// kubeconfig, port-forwards and exec into pods (WebSocket first, SPDY as fallback, as kubectl does).
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
}

// Load reads the kubeconfig the way kubectl does ($KUBECONFIG, ~/.kube/config), with an optional
// context override, and checks that the API server answers.
func Load(ctx context.Context, kubeContext string) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	name := kubeContext
	if name == "" {
		name = raw.CurrentContext
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no cluster configured: set KUBECONFIG or ~/.kube/config (for a local one: hack/cluster.sh up)")
		}
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
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster %s (context %q) does not answer: %w: start it, or pick another with --context", cfg.Host, name, err)
	}
	return &Client{Config: cfg, Clientset: cs, Namespace: ns, Context: name}, nil
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

// WriteKubeconfig writes the current context of the user's kubeconfig, credentials inlined, with
// its server replaced: for a client that reaches the same API server by another address (a relay).
// serverName is the name its certificate is checked against: the original host.
func WriteKubeconfig(kubeContext, server, serverName, path string) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).RawConfig()
	if err != nil {
		return err
	}
	if kubeContext != "" {
		raw.CurrentContext = kubeContext
	}
	if err := clientcmdapi.MinifyConfig(&raw); err != nil {
		return err
	}
	if err := clientcmdapi.FlattenConfig(&raw); err != nil {
		return err
	}
	for _, c := range raw.Clusters {
		c.Server, c.TLSServerName = server, serverName
	}
	return clientcmd.WriteToFile(raw, path)
}
