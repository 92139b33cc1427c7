package agent

import "testing"

// The OOM kill count is read from both cgroup versions' files as the kernel writes them; the
// real kill is proven on the cluster (test/e2e TestFaultOOMKilledDuringUpdate).
func TestParseOOMKills(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     int64
		ok       bool
	}{
		{"v2 memory.events", "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n", 2, true},
		{"v1 memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", 7, true},
		{"v1 before 4.13", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"garbage", "oom_kill many\n", 0, false},
		{"empty", "", 0, false},
	} {
		n, ok := parseOOMKills(c.in)
		if n != c.want || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.name, n, ok, c.want, c.ok)
		}
	}
}
