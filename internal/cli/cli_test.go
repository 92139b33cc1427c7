package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/cli"
)

// invocation is one run of the CLI on injected streams.
type invocation struct {
	args  []string
	dir   string          // the working directory; a fresh temporary one when empty
	stdin string          // -f -
	ctx   context.Context // t.Context() when nil
}

func (in invocation) run(t *testing.T) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if in.dir == "" {
		in.dir = t.TempDir()
	}
	if in.ctx == nil {
		in.ctx = t.Context()
	}
	code = cli.Main(in.ctx, cli.Env{Stdin: strings.NewReader(in.stdin), Stdout: &out, Stderr: &errb, Dir: in.dir}, in.args)
	return code, out.String(), errb.String()
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return invocation{args: args}.run(t)
}

// write writes files under a new temporary directory and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`

func noCluster(t *testing.T) {
	t.Setenv("HOTPOD_DEFAULT_REPO", "")
	t.Setenv("KO_DOCKER_REPO", "")
	t.Setenv("KUBECONFIG", "/nonexistent")
}

// Exit codes: 0 done (help included), 1 failed, 2 the command line is wrong (nothing was done),
// 130 interrupted. A usage error is one line and where to read more, on stderr.
func TestUsageAndBadInput(t *testing.T) {
	noCluster(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"help", "dev"}, 0, "--ready-timeout"},
		{[]string{"deploy-everything"}, 2, `unknown command "deploy-everything"`},
		{[]string{"dve"}, 2, "did you mean dev?"},
		{[]string{"dev"}, 2, "nothing to run"},
		{[]string{"dev", "--local", "-f", "k8s"}, 2, "exclude each other"},
		{[]string{"dev", "--local", "--output", "yaml"}, 2, `--output "yaml": want text or json`},
		{[]string{"dev", "--local", "-o", "yaml"}, 2, `--output "yaml": want text or json`},
		{[]string{"dev", "--local", "--ship", "rsync"}, 2, `--ship "rsync": want auto, delta, full or raw`},
		{[]string{"dev", "--bogus"}, 2, "unknown flag: --bogus\nSee 'hotpod dev --help'.\n"},
		{[]string{"dev", "--local", "--ready-timeout", "5"}, 2, `--ready-timeout "5": a duration needs a unit: 5s`},
		{[]string{"dev", "--local", "--grace", "soon"}, 2, `--grace "soon": want a duration such as 30s`},
		{[]string{"dev", "--local", "--stop-policy", "drain"}, 2, `--stop-policy "drain": want fast, graceful or kill`},
		{[]string{"dev", "-f", "k8s", "--stop-policy", "kill"}, 2, "in the cluster, set each service's stopPolicy in hotpod.yaml"},
		// --port-forward is checked before anything is built or applied.
		{[]string{"dev", "-f", "missing.yaml", "--port-forward", "8080"}, 2, `--port-forward "8080": want LOCAL:REMOTE`},
		{[]string{"dev", "-f", "missing.yaml", "--port-forward", "8080:http"}, 2, "want LOCAL:REMOTE"},
		{[]string{"dev", "-f", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"dev", "-f", "k8s", "./pkg"}, 2, "drop the PACKAGE"},
		{[]string{"dev", "--local", "./a", "./b"}, 2, `unexpected argument "./b"`},
		{[]string{"dev", "-f", "k8s", "--", "--app-flag"}, 2, "drop the PACKAGE and app arguments"},
		{[]string{"build", "--platform", "linux", "--default-repo", "r"}, 2, `--platform "linux": want os/arch`},
		{[]string{"build", "--platform", "linux/amd64,arm", "--default-repo", "r"}, 2, "arm: want os/arch"},
		{[]string{"build"}, 1, "no registry"},
		{[]string{"build", "-n", "x"}, 2, "unknown shorthand flag: 'n'"},
		{[]string{"deploy"}, 2, "nothing to deploy"},
		{[]string{"deploy", "-f", "k8s", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"deploy", "-f", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"deploy", "--filename", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"bench", "--strategy", "rsync", "--default-repo", "r"}, 2, "want one of gobuild, local, hotpod, quick, full, upx, image, incluster"},
		{[]string{"bench", "--link", "fast", "--default-repo", "r"}, 2, "RATE:DELAY"},
		{[]string{"bench", "--edits", "0", "--default-repo", "r"}, 2, "--edits 0: want at least 1 edit"},
		{[]string{"bench", "-n", "3"}, 2, "unknown shorthand flag: 'n'"}, // -n is the namespace elsewhere: bench says --edits
		{[]string{"status", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"status", "-o", "yaml"}, 2, `--output "yaml": want text or json`},
		{[]string{"status"}, 1, "/nonexistent"},
		{[]string{"status", "-f", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"version"}, 0, "agent protocol 1"},
		{[]string{"version", "-o", "json"}, 0, `"agentProtocol":1`},
		{[]string{"version", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"completion", "bash"}, 0, "bash completion"},
		{[]string{"completion", "zsh"}, 0, "zsh completion"},
		{[]string{"completion", "fish"}, 0, "fish completion"},
	}
	for _, c := range cases {
		code, out, errs := run(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("hotpod %v: exit %d, output %q %q; want exit %d with %q", c.args, code, out, errs, c.code, c.want)
		}
		if code == 2 && c.args != nil && strings.Count(errs, "\n") != 2 {
			t.Errorf("hotpod %v: a usage error of %d lines, want the error and where to read more:\n%s", c.args, strings.Count(errs, "\n"), errs)
		}
	}
}

// Help goes to stdout, all of it, with the flags' double-dash names as the README gives them;
// internal flags stay out of it.
func TestHelpOnStdout(t *testing.T) {
	for _, c := range []struct {
		cmd        string
		want, gone []string
	}{
		{"dev", []string{"--filename", "--kustomize", "--namespace", "--context", "--kubeconfig", "--default-repo", "--base-image", "--port-forward", "--ready-timeout", "--output text|json", "--ship auto|delta|full|raw", "--ldflags", "--tags", "--post-build", "--keep", "--helm", "--values", "--set", "LOCAL:KIND/NAME:REMOTE"}, nil},
		{"build", []string{"--platform", "--default-repo", "--base-image", "--context", "--kubeconfig", "--ldflags"}, []string{"--namespace"}},
		{"deploy", []string{"--filename", "- for stdin", "--kustomize", "--helm", "--set-string", "--namespace", "--rollout-timeout"}, nil},
		{"init", []string{"never overwrites"}, nil},
		{"bench", []string{"--edits", "--strategy", "--link", "--quick", "--context", "--kubeconfig"}, []string{"--inside-link", "--namespace"}},
		{"status", []string{"--filename", "--kustomize", "--namespace", "--context", "--kubeconfig", "--output text|json"}, nil},
		{"version", []string{"--output"}, nil},
	} {
		code, out, errs := run(t, c.cmd, "--help")
		if code != 0 || errs != "" {
			t.Errorf("%s --help: exit %d, stderr %q", c.cmd, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %s", c.cmd, w)
			}
		}
		for _, g := range c.gone {
			if strings.Contains(out, g) {
				t.Errorf("%s --help shows %s", c.cmd, g)
			}
		}
	}
}

// The messages for a cluster hotpod cannot reach name what is wrong: the file KUBECONFIG names,
// the contexts there are; the hint for hotpod's test cluster only in a checkout of hotpod.
func TestClusterMessages(t *testing.T) {
	t.Setenv("HOTPOD_DEFAULT_REPO", "127.0.0.1:5000")
	app := write(t, map[string]string{"k8s/web.yaml": deployment})
	checkout := write(t, map[string]string{"go.mod": "module github.com/hotpod/hotpod\n\ngo 1.24\n", "k8s/web.yaml": deployment})
	kubeconfig := filepath.Join(t.TempDir(), "config")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: kind-dev, context: {cluster: c, user: u}}, {name: prod, context: {cluster: c, user: u}}]
current-context: kind-dev
`), 0o600)
	cases := []struct {
		env        string // KUBECONFIG
		in         invocation
		want, gone []string
	}{
		{"/nonexistent/config", invocation{args: []string{"deploy", "-f", "k8s"}, dir: app},
			[]string{"KUBECONFIG names /nonexistent/config, which does not exist"}, []string{"hack/cluster.sh"}},
		{"/nonexistent/config", invocation{args: []string{"deploy", "-f", "k8s"}, dir: checkout},
			[]string{"KUBECONFIG names /nonexistent/config", filepath.Join(checkout, "hack", "cluster.sh") + " up"}, nil},
		{"/nonexistent/config", invocation{args: []string{"deploy", "-f", "-"}, dir: app, stdin: deployment},
			[]string{"KUBECONFIG names /nonexistent/config"}, nil},
		{"/nonexistent/config", invocation{args: []string{"deploy", "-f", "-"}, dir: app, stdin: "kind: [\n"},
			[]string{"stdin: document 1"}, nil},
		{kubeconfig, invocation{args: []string{"deploy", "-f", "k8s", "--context", "staging"}, dir: app},
			[]string{"--context staging", "use one of kind-dev, prod"}, nil},
		{"", invocation{args: []string{"deploy", "-f", "k8s", "--kubeconfig", kubeconfig, "--context", "staging"}, dir: app},
			[]string{"--context staging", kubeconfig, "use one of kind-dev, prod"}, nil},
		{"/nonexistent/config", invocation{args: []string{"deploy", "-f", "k8s", "--kubeconfig", "/nowhere"}, dir: app},
			[]string{"--kubeconfig /nowhere: no such file"}, nil},
		{"/nonexistent/config", invocation{args: []string{"build", "./cmd/x"}, dir: app},
			[]string{"KUBECONFIG names /nonexistent/config", "or name the platform with --platform"}, nil},
	}
	for _, c := range cases {
		t.Setenv("KUBECONFIG", c.env)
		code, out, errs := c.in.run(t)
		if code != 1 {
			t.Errorf("hotpod %v: exit %d, want 1", c.in.args, code)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("hotpod %v: stderr %q lacks %q", c.in.args, errs, w)
			}
		}
		for _, g := range c.gone {
			if strings.Contains(out+errs, g) {
				t.Errorf("hotpod %v: output %q has %q", c.in.args, out+errs, g)
			}
		}
	}
}

// An interrupted command says "interrupted", not "context canceled", and exits 130: every
// command.
func TestInterruptedExits130(t *testing.T) {
	noCluster(t)
	mod := write(t, map[string]string{"go.mod": "module example.com/app\n\ngo 1.24\n", "main.go": "package main\n\nfunc main() {}\n", "k8s/web.yaml": deployment})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cli.ErrInterrupted)
	for _, args := range [][]string{
		{"dev", "--local"},
		{"build", "--default-repo", "r", "--platform", "linux/amd64"},
		{"deploy", "-f", "k8s"},
		{"bench", "--default-repo", "r"},
	} {
		code, _, errs := invocation{args: args, dir: mod, ctx: ctx}.run(t)
		if code != cli.ExitInterrupted || !strings.HasSuffix(errs, "interrupted\n") || strings.Contains(errs, "context canceled") {
			t.Errorf("hotpod %v interrupted: exit %d, stderr %q; want %d and interrupted", args, code, errs, cli.ExitInterrupted)
		}
	}
}

// hotpod.yaml, found from the working directory upwards, names the manifests when the command
// line does not; its mistakes are one line with the file and line; --set without a chart and a
// project without manifests are usage errors.
func TestProjectFile(t *testing.T) {
	noCluster(t)
	withFiles := write(t, map[string]string{
		"hotpod.yaml":  "manifests:\n  files: [k8s]\n",
		"k8s/bad.yaml": "kind: [\n",
		"sub/.keep":    "",
	})
	noManifests := write(t, map[string]string{"hotpod.yaml": "namespace: shop\n"})
	broken := write(t, map[string]string{"hotpod.yaml": "sevices: []\n"})
	cases := []struct {
		in   invocation
		code int
		want string
	}{
		{invocation{args: []string{"dev"}, dir: filepath.Join(withFiles, "sub")}, 1, filepath.Join(withFiles, "k8s", "bad.yaml") + ": document 1"},
		{invocation{args: []string{"deploy"}, dir: withFiles}, 1, filepath.Join(withFiles, "k8s", "bad.yaml") + ": document 1"},
		{invocation{args: []string{"dev", "-f", "-"}, dir: withFiles, stdin: deployment}, 1, "KUBECONFIG names /nonexistent"}, // -f replaces the file's
		{invocation{args: []string{"dev"}, dir: noManifests}, 2, "hotpod.yaml names no manifests: give -f k8s/, -k overlay/ or --helm chart/, or set manifests: in it, or --local"},
		{invocation{args: []string{"deploy"}, dir: noManifests}, 2, "hotpod.yaml names no manifests"},
		{invocation{args: []string{"dev", "-f", "k8s", "--set", "replicas=2"}, dir: noManifests}, 2, "--values, --set and --set-string go with a Helm chart"},
		{invocation{args: []string{"deploy", "--set", "replicas"}, dir: noManifests}, 2, `--set "replicas": want KEY=VALUE`},
		{invocation{args: []string{"dev"}, dir: broken}, 1, filepath.Join(broken, "hotpod.yaml") + `:1: unknown field "sevices" (did you mean "services"?)`},
		{invocation{args: []string{"build", "--platform", "linux/amd64"}, dir: broken}, 1, `unknown field "sevices"`},
		{invocation{args: []string{"dev"}, dir: t.TempDir()}, 2, "or name them in a hotpod.yaml (hotpod init writes one)"},
	}
	for _, c := range cases {
		code, out, errs := c.in.run(t)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("hotpod %v in %s: exit %d, stdout %q stderr %q; want exit %d with %q", c.in.args, c.in.dir, code, out, errs, c.code, c.want)
		}
	}
}

// hotpod init reports what it found and guessed, writes a hotpod.yaml that loads, and never
// overwrites one: the second run exits 1 and leaves the file as it was.
func TestInit(t *testing.T) {
	dir := write(t, map[string]string{
		"go.mod":            "module example.com/shop\n\ngo 1.24\n",
		"cmd/api/main.go":   "package main\n\nfunc main() {}\n",
		"k8s/api.yaml":      strings.Replace(deployment, "containers: [{name: web, image: nginx}]", "containers:\n      - name: api\n        image: ko://example.com/shop/cmd/api", 1),
		"Dockerfile.ignore": "",
	})
	code, out, errs := invocation{args: []string{"init"}, dir: dir}.run(t)
	if code != 0 {
		t.Fatalf("hotpod init: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"found: k8s/api.yaml", "ko:// image example.com/shop/cmd/api", "wrote " + filepath.Join(dir, "hotpod.yaml") + " with 1 service"} {
		if !strings.Contains(out, want) {
			t.Errorf("hotpod init said nothing of %q:\n%s", want, out)
		}
	}
	written, err := os.ReadFile(filepath.Join(dir, "hotpod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(written), "image: ko://example.com/shop/cmd/api") || !strings.Contains(string(written), "k8s") {
		t.Errorf("hotpod.yaml lacks the service or the manifests:\n%s", written)
	}
	code, out, errs = invocation{args: []string{"init"}, dir: dir}.run(t)
	if code != 1 || !strings.Contains(errs, "hotpod.yaml already exists: hotpod init never overwrites") || out != "" {
		t.Errorf("second hotpod init: exit %d, stdout %q, stderr %q; want exit 1 and one line saying it exists", code, out, errs)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "hotpod.yaml")); string(again) != string(written) {
		t.Error("the second hotpod init changed hotpod.yaml")
	}
}
