package config

import (
	"testing"

	"github.com/hotpod/hotpod/internal/agent"
)

// hotpod.yaml's stopPolicy becomes the agent's --stop-policy: the file must accept exactly what
// the agent accepts (the CLI does not link the agent, so the list is kept twice).
func TestStopPoliciesAreTheAgents(t *testing.T) {
	for _, p := range []string{"fast", "graceful", "kill", "Fast", "term", "", "drain"} {
		_, err := agent.ParseStopPolicy(p)
		if agentTakes := err == nil; agentTakes != stopPolicies[p] {
			t.Errorf("stop policy %q: the agent takes it: %v, hotpod.yaml takes it: %v", p, agentTakes, stopPolicies[p])
		}
	}
}
