// Package hotpod carries the agent's source inside the CLI, so that the CLI can compile the
// agent for whatever platform a cluster's nodes run, offline, however hotpod was installed
// (see internal/agentbin and docs/architecture.md).
package hotpod

import "embed"

// AgentSource holds the module files and every package the agent is built from.
//
//go:embed go.mod go.sum cmd/hotpod-agent/*.go internal/agent/*.go internal/agentapi/*.go internal/delta/*.go
var AgentSource embed.FS

// AgentPackage is the agent's main package within AgentSource.
const AgentPackage = "./cmd/hotpod-agent"
