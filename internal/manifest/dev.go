package manifest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

// Where the dev image and the rewritten pod keep things.
const (
	AgentPath = "/hotpod/agent" // the agent, in its own image layer
	KoAppDir  = "/ko-app"       // the app as built into the image (ko's layout)
	KoDataDir = "/var/run/ko"   // ko's kodata/ in the image (KO_DATA_PATH)
	AppDir    = "/hotpod/app"   // an emptyDir: the binary the agent swaps, writable for any user
	SyncDir   = "/hotpod/kodata"
	TokenDir  = "/hotpod/token" // the session Secret, mounted read-only
	AgentPort = 7878            // the first agent's port in a pod; the next ones count up
	TokenKey  = "token"
	// DelvePath is where the agent keeps the dlv hotpod dev --debug sends it (in the emptyDir
	// of the binary: works for any user and read-only roots, and survives a container restart).
	DelvePath  = AppDir + "/.hotpod-dlv"
	SessionKey = "hotpod.dev/session" // label: which hotpod session made or changed the object / runs the pod
	AgentsKey  = "hotpod.dev/agents"  // pod annotation: the agents in the pod (JSON []Agent)
	// KoPath is the PATH ko gives its images; dev mode puts AppDir first.
	KoPath = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + KoAppDir

	volumePrefix = "hotpod-"
	tokenVolume  = volumePrefix + "token"
	// hostNetwork pods share the node's ports: their agents get ports from this range, picked
	// by a hash of the workload so that two sessions on one node do not meet.
	hostPortBase, hostPortSpan = 20000, 10000
)

// Built is an image hotpod built (a ko:// import path) or rebuilt on a user's image, as the
// rewrite needs to know it.
type Built struct {
	Ref     string // registry/repo@sha256:...
	Name    string // the binary's base name
	Service string // the loop that swaps this binary (agents annotation); default: the image key
	// Binary is where the image keeps the app ("" means /ko-app/<Name>, ko's layout).
	Binary string
	// Entrypoint and Cmd are the image's; they run when the container names no command
	// (an empty Entrypoint means [Binary]).
	Entrypoint, Cmd []string
	WorkingDir      string
	Path            string // the image's PATH ("" means ko's)
	// KoData is the directory in the image holding the main package's kodata/ ("" when none):
	// in dev mode it is copied into an emptyDir that edits are synced to.
	KoData string
	// Ready is the agent's readiness check (tcp:PORT or http://127.0.0.1:PORT/PATH), in place
	// of the container's readinessProbe; "" keeps the probe. StopSignal (TERM, INT...), Grace
	// and StopPolicy (fast, graceful, kill) say how the agent stops the app; empty keeps the
	// agent's defaults.
	Ready, StopSignal, StopPolicy string
	Grace                         time.Duration
}

func (b Built) binary() string {
	if b.Binary != "" {
		return b.Binary
	}
	return path.Join(KoAppDir, b.Name)
}

// Dev says how to rewrite manifests for a session.
type Dev struct {
	Session     string
	TokenSecret string // Secret (in each pod's namespace) holding the session token under TokenKey
	// Images are the builds by the image as the manifests name it: "ko://<import path>", or a
	// repository ("registry.example.com/shop/legacy") that matches any tag or digest of it.
	Images map[string]Built
	// Debug starts the agents with --debug: the app runs under Delve once the CLI sends dlv.
	// `dlv exec` runs the binary itself, so a command that runs it through a shell script is
	// refused; a wrapper in front of it (tini, dumb-init) is left out under the debugger.
	Debug bool
}

// Lookup finds the build for a container's image.
func (d Dev) Lookup(image string) (Built, string, bool) {
	if b, ok := d.Images[image]; ok {
		return b, image, true
	}
	if strings.HasPrefix(image, KoPrefix) {
		return Built{}, "", false
	}
	repo := Repository(image)
	b, ok := d.Images[repo]
	return b, repo, ok
}

// Repository strips the tag and digest from an image reference.
func Repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// Agent is one agent in a pod, as recorded in the AgentsKey annotation.
type Agent struct {
	Container string `json:"container"`
	Port      int    `json:"port"`
	Service   string `json:"service"`
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

// Rewrite puts every container of o that runs a built image under the hotpod agent, in every
// pod template of o, whatever its kind (see PodTemplates), then replaces the remaining ko://
// references anywhere in o. In each such container:
//   - the command becomes the agent, then --, then the container's own command and args (the
//     image's entrypoint and cmd when it names none) with the image's binary replaced by the
//     swapped copy in AppDir: by path, by name (AppDir goes first on PATH), relative to the
//     working directory, or inside an `sh -c` script; wrappers (tini, dumb-init, a shell) stay
//     in front. A command that never names the binary is refused: hotpod could not swap it;
//   - the binary lives in an emptyDir at AppDir, seeded from the image by the agent, so the swap
//     works for non-root users and with readOnlyRootFilesystem; kodata likewise in SyncDir;
//   - liveness and startup probes are dropped (a restart must never get the container killed);
//     the readiness probe stays and also becomes the agent's ready check (--probe);
//   - the session token is the session Secret, mounted read-only at TokenDir.
//
// Native sidecars (init containers with restartPolicy Always) are treated as containers; other
// init containers only get the built image. In pods that end (restartPolicy Never or
// OnFailure: Jobs, CronJobs) the agent exits with the app, as the container would.
func Rewrite(o *Object, d Dev) error {
	tpls := PodTemplates(o)
	for _, t := range tpls {
		if err := d.rewritePod(o, t); err != nil {
			return err
		}
	}
	refs := map[string]string{}
	for img, b := range d.Images {
		if ip, ok := strings.CutPrefix(img, KoPrefix); ok {
			refs[ip] = b.Ref
		}
	}
	return Resolve(o, refs)
}

func (d Dev) rewritePod(o *Object, t PodTemplate) error {
	where := o.GetKind() + "/" + o.GetName()
	if o.GetName() == "" && o.GetGenerateName() != "" {
		where = o.GetKind() + "/" + o.GetGenerateName() + "*"
	}
	ports := map[int]bool{} // every port the pod declares, so no agent takes one
	for _, f := range []string{"initContainers", "containers"} {
		for _, c := range containers(t.Spec, f) {
			l, _ := c["ports"].([]any)
			for _, p := range l {
				pm, _ := p.(map[string]any)
				ports[portNumber(c, pm["containerPort"])] = true
				ports[portNumber(c, pm["hostPort"])] = true
			}
		}
	}
	hostNet, _ := t.Spec["hostNetwork"].(bool)
	nextPort := AgentPort
	if hostNet {
		h := fnv.New32a()
		h.Write([]byte(o.GetNamespace() + "/" + where))
		nextPort = hostPortBase + int(h.Sum32()%hostPortSpan)
	}
	restart, _ := t.Spec["restartPolicy"].(string)
	ends := restart == "Never" || restart == "OnFailure"

	var agents []Agent
	var volumes []any
	devc := func(c map[string]any) error {
		img, _ := c["image"].(string)
		b, key, ok := d.Lookup(img)
		if !ok {
			if strings.HasPrefix(img, KoPrefix) {
				return fmt.Errorf("%s: container %v: %s was not built", where, c["name"], img)
			}
			return nil
		}
		c["image"] = b.Ref
		if d.Session == "" {
			return nil
		}
		if o.GetName() == "" {
			return fmt.Errorf("%s: hotpod dev needs a fixed metadata.name to follow and restore the object: replace generateName with name", where)
		}
		for ports[nextPort] {
			nextPort++
		}
		ports[nextPort] = true
		service := b.Service
		if service == "" {
			service = key
		}
		name, _ := c["name"].(string)
		a := Agent{Container: name, Port: nextPort, Service: service}
		vol := volumePrefix + "app-" + strconv.Itoa(len(agents))
		sync := ""
		if b.KoData != "" {
			sync = volumePrefix + "kodata-" + strconv.Itoa(len(agents))
			volumes = append(volumes, map[string]any{"name": sync, "emptyDir": map[string]any{}})
		}
		agents = append(agents, a)
		volumes = append(volumes, map[string]any{"name": vol, "emptyDir": map[string]any{}})
		if err := devContainer(c, b, a, vol, sync, ends, d.Debug); err != nil {
			return fmt.Errorf("%s: container %s: %w", where, name, err)
		}
		return nil
	}
	for _, c := range containers(t.Spec, "initContainers") {
		if p, _ := c["restartPolicy"].(string); p == "Always" {
			if err := devc(c); err != nil {
				return err
			}
			continue
		}
		img, _ := c["image"].(string)
		if b, _, ok := d.Lookup(img); ok {
			c["image"] = b.Ref // runs once and ends: the built image, no agent
		}
	}
	for _, c := range containers(t.Spec, "containers") {
		if err := devc(c); err != nil {
			return err
		}
	}
	if len(agents) == 0 {
		return nil
	}
	volumes = append(volumes, map[string]any{"name": tokenVolume, "secret": map[string]any{
		"secretName": d.TokenSecret, "defaultMode": int64(0o444),
		"items": []any{map[string]any{"key": TokenKey, "path": TokenKey}}}})
	have, _ := t.Spec["volumes"].([]any)
	for _, v := range have {
		vm, _ := v.(map[string]any)
		if n, _ := vm["name"].(string); strings.HasPrefix(n, volumePrefix) {
			return fmt.Errorf("%s: the pod already has a volume named %s: hotpod adds volumes named %s*; rename yours", where, n, volumePrefix)
		}
	}
	t.Spec["volumes"] = append(have, volumes...)
	labels, _ := t.Meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels[SessionKey] = d.Session
	t.Meta["labels"] = labels
	ann, _ := t.Meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	aj, _ := json.Marshal(agents)
	ann[AgentsKey] = string(aj)
	t.Meta["annotations"] = ann
	return nil
}

func devContainer(c map[string]any, b Built, a Agent, vol, sync string, ends, debug bool) error {
	for _, m := range containers(c, "volumeMounts") {
		if p, _ := m["mountPath"].(string); p == "/hotpod" || strings.HasPrefix(p, "/hotpod/") {
			return fmt.Errorf("it already mounts %s: hotpod keeps its files under /hotpod; mount yours elsewhere", p)
		}
	}
	argv, err := command(c, b)
	if err != nil {
		return err
	}
	swapped := path.Join(AppDir, path.Base(b.binary()))
	if debug && !namedAsWord(argv, swapped) {
		return fmt.Errorf("--debug runs the binary itself under Delve (dlv exec), but the command %q runs it from a shell script: give the binary and its arguments as command and args, or drop --debug", argv)
	}
	agent := []string{AgentPath, "--listen=127.0.0.1:" + strconv.Itoa(a.Port), "--binary=" + swapped,
		"--seed=" + b.binary(), "--token-file=" + path.Join(TokenDir, TokenKey)}
	probe, err := readyProbe(c)
	if err != nil {
		return err
	}
	if probe != nil && probe.Exec != nil {
		// The kubelet's exec probe and the agent's run the swapped binary too, not the image's.
		dir, _ := c["workingDir"].(string)
		probe.Exec.Command, _ = swapBinary(probe.Exec.Command, b.binary(), dir)
		rp := c["readinessProbe"].(map[string]any)
		rp["exec"].(map[string]any)["command"] = toAny(probe.Exec.Command)
	}
	switch {
	case b.Ready != "": // hotpod.yaml's ready: the agent's check instead of the readinessProbe
		agent = append(agent, "--ready="+b.Ready)
	case probe != nil:
		pj, _ := json.Marshal(probe)
		agent = append(agent, "--probe="+string(pj))
	}
	if b.StopSignal != "" {
		agent = append(agent, "--stop-signal="+b.StopSignal)
	}
	if b.Grace > 0 {
		agent = append(agent, "--grace="+b.Grace.String())
	}
	if b.StopPolicy != "" {
		agent = append(agent, "--stop-policy="+b.StopPolicy)
	}
	if sync != "" {
		agent = append(agent, "--sync-seed="+b.KoData, "--sync-dir="+SyncDir)
	}
	if ends {
		agent = append(agent, "--exit-with-app")
	}
	if debug {
		agent = append(agent, "--debug="+DelvePath)
	}
	c["command"] = toAny(append(append(agent, "--"), argv...))
	delete(c, "args")
	delete(c, "livenessProbe")
	delete(c, "startupProbe")

	env, _ := c["env"].([]any)
	imagePath := b.Path
	if imagePath == "" {
		imagePath = KoPath
	}
	hasPath, hasKoData := false, false
	for _, e := range env {
		em, _ := e.(map[string]any)
		switch em["name"] {
		case "PATH":
			hasPath = true
			if v, ok := em["value"].(string); ok {
				em["value"] = AppDir + ":" + v
			}
		case "KO_DATA_PATH":
			hasKoData = true
		}
	}
	if !hasPath {
		env = append(env, map[string]any{"name": "PATH", "value": AppDir + ":" + imagePath})
	}
	if sync != "" && !hasKoData {
		env = append(env, map[string]any{"name": "KO_DATA_PATH", "value": SyncDir})
	}
	c["env"] = env
	mounts, _ := c["volumeMounts"].([]any)
	mounts = append(mounts, map[string]any{"name": vol, "mountPath": AppDir},
		map[string]any{"name": tokenVolume, "mountPath": TokenDir, "readOnly": true})
	if sync != "" {
		mounts = append(mounts, map[string]any{"name": sync, "mountPath": SyncDir})
	}
	c["volumeMounts"] = mounts
	return nil
}

// command is the argv the container runs, with the image's binary replaced by its swapped copy.
func command(c map[string]any, b Built) ([]string, error) {
	cmd, err := stringList(c["command"])
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	args, err := stringList(c["args"])
	if err != nil {
		return nil, fmt.Errorf("args: %w", err)
	}
	// Kubernetes' rule: command replaces the image's entrypoint (and drops its cmd); args
	// replace the cmd.
	if len(cmd) == 0 {
		cmd = b.Entrypoint
		if len(cmd) == 0 && len(b.Cmd) == 0 {
			cmd = []string{b.binary()}
		}
		if len(args) == 0 {
			args = b.Cmd
		}
	}
	argv := append(append([]string{}, cmd...), args...)
	dir, _ := c["workingDir"].(string)
	if dir == "" {
		dir = b.WorkingDir
	}
	argv, named := swapBinary(argv, b.binary(), dir)
	bin, name := b.binary(), path.Base(b.binary())
	if !named {
		return nil, fmt.Errorf("its command %q never names the app's binary (%s or %s), so hotpod cannot swap what it runs: start the binary directly, or through sh -c, tini or dumb-init naming it", argv, bin, name)
	}
	return argv, nil
}

// swapBinary replaces the references to the image's binary bin in argv by its swapped copy in
// AppDir, and says whether argv names the binary at all (by path, by name through PATH, relative
// to dir, or inside an `sh -c` script).
func swapBinary(argv []string, bin, dir string) ([]string, bool) {
	argv = append([]string(nil), argv...)
	name := path.Base(bin)
	swapped := path.Join(AppDir, name)
	if dir == "" {
		dir = "/"
	}
	named := false
	for i, a := range argv {
		switch {
		case a == bin, !strings.HasPrefix(a, "/") && strings.Contains(a, "/") && path.Join(dir, a) == bin:
			argv[i], named = swapped, true
		case a == name:
			named = true // found through PATH, where AppDir comes first
		case i > 0 && isShell(argv[0]) && isShellC(argv[i-1]):
			s, n := replaceWord(a, bin, swapped)
			if n == 0 {
				_, n = replaceWord(a, name, name)
			}
			argv[i], named = s, named || n > 0
		}
	}
	return argv, named
}

// namedAsWord says whether argv names the swapped binary as an argument of its own (by path
// or by name), not only inside a shell script: what `dlv exec` can run.
func namedAsWord(argv []string, swapped string) bool {
	for i, a := range argv {
		if i > 0 && isShell(argv[0]) && isShellC(argv[i-1]) {
			continue
		}
		if a == swapped || a == path.Base(swapped) {
			return true
		}
	}
	return false
}

func isShell(argv0 string) bool {
	switch path.Base(argv0) {
	case "sh", "bash", "ash", "dash", "zsh", "ksh":
		return true
	}
	return false
}

// isShellC reports whether a shell flag is -c or a cluster holding it (-ec, -xc).
func isShellC(flag string) bool {
	return strings.HasPrefix(flag, "-") && !strings.HasPrefix(flag, "--") && strings.Contains(flag, "c")
}

// replaceWord replaces the occurrences of word in script that stand as a shell word (not part
// of a longer path or name) by with, and counts them.
func replaceWord(script, word, with string) (string, int) {
	sep := func(r byte) bool { return strings.IndexByte(" \t\n;&|()`\"'=<>", r) >= 0 }
	var out strings.Builder
	n := 0
	for i := 0; i < len(script); {
		j := strings.Index(script[i:], word)
		if j < 0 {
			out.WriteString(script[i:])
			break
		}
		j += i
		end := j + len(word)
		if (j == 0 || sep(script[j-1])) && (end == len(script) || sep(script[end])) {
			out.WriteString(script[i:j])
			out.WriteString(with)
			n++
		} else {
			out.WriteString(script[i:end])
		}
		i = end
	}
	return out.String(), n
}

// readyProbe turns the container's readinessProbe into the agent's --probe, or nil.
func readyProbe(c map[string]any) (*agentapi.Probe, error) {
	rp, _ := c["readinessProbe"].(map[string]any)
	if rp == nil {
		return nil, nil
	}
	p := &agentapi.Probe{TimeoutSeconds: intOf(rp["timeoutSeconds"])}
	port := func(h map[string]any) (int, error) {
		n := portNumber(c, h["port"])
		if n == 0 {
			return 0, fmt.Errorf("readinessProbe port %v is neither a number nor the name of one of the container's ports", h["port"])
		}
		return n, nil
	}
	var err error
	switch {
	case rp["httpGet"] != nil:
		h, _ := rp["httpGet"].(map[string]any)
		g := &agentapi.HTTPGetProbe{}
		g.Scheme, _ = h["scheme"].(string)
		g.Host, _ = h["host"].(string)
		g.Path, _ = h["path"].(string)
		hs, _ := h["httpHeaders"].([]any)
		for _, x := range hs {
			xm, _ := x.(map[string]any)
			n, _ := xm["name"].(string)
			v, _ := xm["value"].(string)
			g.Headers = append(g.Headers, agentapi.Header{Name: n, Value: v})
		}
		g.Port, err = port(h)
		p.HTTPGet = g
	case rp["tcpSocket"] != nil:
		h, _ := rp["tcpSocket"].(map[string]any)
		t := &agentapi.TCPProbe{}
		t.Host, _ = h["host"].(string)
		t.Port, err = port(h)
		p.TCPSocket = t
	case rp["grpc"] != nil:
		h, _ := rp["grpc"].(map[string]any)
		g := &agentapi.GRPCProbe{}
		g.Service, _ = h["service"].(string)
		g.Port, err = port(h)
		p.GRPC = g
	case rp["exec"] != nil:
		h, _ := rp["exec"].(map[string]any)
		cmd, cerr := stringList(h["command"])
		if cerr != nil {
			return nil, fmt.Errorf("readinessProbe exec command: %w", cerr)
		}
		p.Exec = &agentapi.ExecProbe{Command: cmd}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("readinessProbe: %w", err)
	}
	return p, nil
}

func intOf(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// portNumber resolves a probe's port: a number, or the name of one of the container's ports.
func portNumber(c map[string]any, p any) int {
	if s, ok := p.(string); ok {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
		ports, _ := c["ports"].([]any)
		for _, pp := range ports {
			pm, _ := pp.(map[string]any)
			if pm["name"] == s {
				return portNumber(c, pm["containerPort"])
			}
		}
		return 0
	}
	return intOf(p)
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
