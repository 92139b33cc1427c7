package agent

import (
	"os"
	"strconv"
	"strings"
)

// oomFiles hold the count of processes the kernel's OOM killer ended in the agent's memory
// cgroup, which in a container is the container's own (runc mounts it at /sys/fs/cgroup):
// cgroup v2's memory.events, then v1's memory.oom_control (its oom_kill line, kernel 4.13+).
var oomFiles = []string{"/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"}

// oomKilledHint is the line added to an app's last output when it died of SIGKILL and the OOM
// count rose during its run: exit code 137 alone does not say why.
const oomKilledHint = "hotpod-agent: killed by the kernel's OOM killer: the container reached its memory limit (raise resources.limits.memory, or use less)"

// oomKills is the OOM kill count of the agent's memory cgroup, -1 where none can be read.
func oomKills() int64 {
	for _, f := range oomFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, ok := parseOOMKills(string(b)); ok {
			return n
		}
	}
	return -1
}

// parseOOMKills finds the "oom_kill N" line of a memory.events or memory.oom_control file.
func parseOOMKills(s string) (int64, bool) {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
