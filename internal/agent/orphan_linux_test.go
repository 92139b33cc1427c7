package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An agent killed outright (SIGKILL, the OOM killer) takes its app with it: nothing is left
// running that nobody stops. (Seen failing before the app had a parent-death signal: hotpod's
// own test runs left the apps of killed agents running.)
func TestKilledAgentLeavesNoApp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "app")
	copyFile(t, childV1, bin)
	a := startAgentProc(t, bin)
	st, err := a.client.Status(t.Context())
	if err != nil || st.PID == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for running(st.PID) {
		if time.Now().After(deadline) {
			syscall.Kill(st.PID, syscall.SIGKILL)
			t.Fatalf("the app (pid %d) still runs 30 s after its agent was killed", st.PID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running says whether pid is a process that has not exited (a zombie has).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
