package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Real binaries for the tests: two versions of the child app and the agent itself.
var (
	childV1, childV2, agentBin, wrapperBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		childV1 = filepath.Join(dir, "child-v1")
		childV2 = filepath.Join(dir, "child-v2")
		agentBin = filepath.Join(dir, "hotpod-agent")
		wrapperBin = filepath.Join(dir, "wrapper")
		for _, b := range []struct{ out, pkg, ldflags string }{
			{childV1, "./testdata/child", "-X main.version=v1"},
			{childV2, "./testdata/child", "-X main.version=v2"},
			{agentBin, "../../cmd/hotpod-agent", ""},
			{wrapperBin, "./testdata/wrapper", ""},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", b.ldflags, "-o", b.out, b.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}
