package manifest

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Where the dev image and the rewritten pod keep things.
const (
	AgentPath   = "/hotpod/agent" // the agent, in its own image layer
	KoAppDir    = "/ko-app"       // the app as built into the image (ko's layout)
	AppDir      = "/hotpod/app"   // an emptyDir: the binary the agent swaps, writable for any user
	AgentPort   = 7878            // the first built container's agent; the next ones count up
	TokenKey    = "token"
	TokenEnv    = "HOTPOD_TOKEN"
	SessionKey  = "hotpod.dev/session" // pod label: which hotpod session runs the pod
	AgentsKey   = "hotpod.dev/agents"  // pod annotation: the agents in the pod (JSON []Agent)
	volumePrefx = "hotpod-app-"
)

// Built is an image hotpod built for an import path.
type Built struct {
	Ref  string // registry/repo@sha256:...
	Name string // the binary's name: /ko-app/<Name>
}

// Dev says how to rewrite manifests for a session.
type Dev struct {
	Session     string
	TokenSecret string           // Secret holding the session token under TokenKey
	Images      map[string]Built // by import path
}

// Agent is one agent in a pod, as recorded in the AgentsKey annotation.
type Agent struct {
	Container  string `json:"container"`
	Port       int    `json:"port"`
	ImportPath string `json:"importPath"`
}

// Agents reads the AgentsKey annotation of a pod.
func Agents(annotations map[string]string) ([]Agent, error) {
	s, ok := annotations[AgentsKey]
	if !ok {
		return nil, nil
	}
	var a []Agent
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AgentsKey, err)
	}
	return a, nil
}

// Rewrite replaces every ko:// image in o by its build and, in dev mode (d.Session set), puts
// each such container under the agent:
//   - command: the agent, then --, then the original command and args (the image's entrypoint
//     /ko-app/<name> when the manifest names none), the binary path moved into AppDir;
//   - the binary lives in an emptyDir at AppDir, seeded from the image by the agent, so the swap
//     works for non-root users and with readOnlyRootFilesystem;
//   - liveness and startup probes are dropped (a restart must never get the container killed);
//     the readiness probe stays and also becomes the agent's ready check;
//   - the session token comes from the session's Secret.
//
// Init containers and containers with other images are left alone.
func Rewrite(o *Object, d Dev) error {
	// Init containers get the built image, never the agent: they run once and end.
	err := eachIn(o, "initContainers", func(c map[string]any) error {
		img, _ := c["image"].(string)
		if b, ok := d.Images[strings.TrimPrefix(img, KoPrefix)]; ok && strings.HasPrefix(img, KoPrefix) {
			c["image"] = b.Ref
		}
		return nil
	})
	if err != nil {
		return err
	}
	var agents []Agent
	err = eachContainer(o, func(c map[string]any) error {
		img, _ := c["image"].(string)
		if !strings.HasPrefix(img, KoPrefix) {
			return nil
		}
		ip := strings.TrimPrefix(img, KoPrefix)
		b, ok := d.Images[ip]
		if !ok {
			return fmt.Errorf("image %s was not built", img)
		}
		c["image"] = b.Ref
		if d.Session == "" {
			return nil
		}
		name, _ := c["name"].(string)
		a := Agent{Container: name, Port: AgentPort + len(agents), ImportPath: ip}
		agents = append(agents, a)
		return devContainer(c, b, a, d, volumePrefx+strconv.Itoa(len(agents)-1))
	})
	if err != nil || len(agents) == 0 {
		return err
	}
	spec := podSpecPath(o.GetKind())
	vols, _, err := unstructured.NestedSlice(o.Object, append(spec, "volumes")...)
	if err != nil {
		return err
	}
	for i := range agents {
		vols = append(vols, map[string]any{"name": volumePrefx + strconv.Itoa(i), "emptyDir": map[string]any{}})
	}
	if err := unstructured.SetNestedSlice(o.Object, vols, append(spec, "volumes")...); err != nil {
		return err
	}
	meta := podTemplateMetaPath(o.GetKind())
	if o.GetKind() == "Pod" {
		meta = []string{"metadata"}
	}
	if err := setStringMapEntry(o, append(meta, "labels"), SessionKey, d.Session); err != nil {
		return err
	}
	aj, _ := json.Marshal(agents)
	return setStringMapEntry(o, append(meta, "annotations"), AgentsKey, string(aj))
}

func devContainer(c map[string]any, b Built, a Agent, d Dev, volume string) error {
	argv, err := stringList(c["command"])
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	args, err := stringList(c["args"])
	if err != nil {
		return fmt.Errorf("args: %w", err)
	}
	inImage := path.Join(KoAppDir, b.Name)
	swapped := path.Join(AppDir, b.Name)
	if len(argv) == 0 {
		argv = []string{inImage}
	}
	argv = append(argv, args...)
	if argv[0] == inImage || argv[0] == b.Name {
		argv[0] = swapped
	}
	agent := []string{AgentPath, "--listen=127.0.0.1:" + strconv.Itoa(a.Port), "--binary=" + swapped, "--seed=" + inImage}
	if ready := readyCheck(c); ready != "" {
		agent = append(agent, "--ready="+ready)
	}
	c["command"] = toAny(append(append(agent, "--"), argv...))
	delete(c, "args")
	delete(c, "livenessProbe")
	delete(c, "startupProbe")
	env, _ := c["env"].([]any)
	c["env"] = append(env, map[string]any{"name": TokenEnv, "valueFrom": map[string]any{
		"secretKeyRef": map[string]any{"name": d.TokenSecret, "key": TokenKey}}})
	mounts, _ := c["volumeMounts"].([]any)
	c["volumeMounts"] = append(mounts, map[string]any{"name": volume, "mountPath": AppDir})
	return nil
}

// readyCheck turns the container's readinessProbe into the agent's --ready, or "".
func readyCheck(c map[string]any) string {
	probe, _ := c["readinessProbe"].(map[string]any)
	if probe == nil {
		return ""
	}
	if h, ok := probe["httpGet"].(map[string]any); ok {
		port := portNumber(c, h["port"])
		if port == 0 {
			return ""
		}
		p, _ := h["path"].(string)
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		return fmt.Sprintf("http://127.0.0.1:%d%s", port, p)
	}
	if t, ok := probe["tcpSocket"].(map[string]any); ok {
		if port := portNumber(c, t["port"]); port != 0 {
			return "tcp:" + strconv.Itoa(port)
		}
	}
	return ""
}

// portNumber resolves a probe's port: a number, or the name of one of the container's ports.
func portNumber(c map[string]any, p any) int {
	switch v := p.(type) {
	case int64:
		return int(v)
	case float64:
		return int(v)
	case int:
		return v
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		ports, _ := c["ports"].([]any)
		for _, pp := range ports {
			pm, _ := pp.(map[string]any)
			if pm["name"] == v {
				return portNumber(c, pm["containerPort"])
			}
		}
	}
	return 0
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings, have %T", v)
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("item %d is %T, not a string", i, x)
		}
		out[i] = s
	}
	return out, nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func setStringMapEntry(o *Object, p []string, k, v string) error {
	m, _, err := unstructured.NestedStringMap(o.Object, p...)
	if err != nil {
		return err
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return unstructured.SetNestedStringMap(o.Object, m, p...)
}
