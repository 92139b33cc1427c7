package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hotpod/hotpod/internal/cli"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), cli.Env{Stdout: &out, Stderr: &errb, Dir: t.TempDir()}, args)
	return code, out.String(), errb.String()
}

func TestUsageAndBadInput(t *testing.T) {
	t.Setenv("HOTPOD_DEFAULT_REPO", "")
	t.Setenv("KO_DOCKER_REPO", "")
	t.Setenv("KUBECONFIG", "/nonexistent")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"deploy-everything"}, 2, `unknown command "deploy-everything"`},
		{[]string{"dev"}, 1, "nothing to run"},
		{[]string{"dev", "--local", "-f", "k8s"}, 1, "exclude each other"},
		{[]string{"dev", "--local", "--output", "yaml"}, 1, "--output yaml"},
		{[]string{"dev", "--local", "--ship", "rsync"}, 1, `--ship "rsync"`},
		{[]string{"dev", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"dev", "-f", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"dev", "-f", "k8s", "./pkg"}, 1, "drop the PACKAGE"},
		{[]string{"build", "--platform", "linux", "--default-repo", "r"}, 1, "want os/arch"},
		{[]string{"build"}, 1, "no registry"},
		{[]string{"deploy"}, 1, "nothing to deploy"},
		{[]string{"deploy", "-f", "k8s", "extra"}, 1, `unexpected argument "extra"`},
		{[]string{"deploy", "-f", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"bench", "--strategy", "rsync", "--default-repo", "r"}, 1, "want one of local, hotpod, full, upx, image, incluster"},
		{[]string{"bench", "--link", "fast", "--default-repo", "r"}, 1, "RATE:DELAY"},
		{[]string{"version"}, 0, "hotpod"},
	}
	for _, c := range cases {
		code, out, errs := run(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("hotpod %v: exit %d, output %q %q; want exit %d with %q", c.args, code, out, errs, c.code, c.want)
		}
	}
}
