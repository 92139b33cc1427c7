package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hotpod/hotpod/internal/build"
)

// Build holds go build settings. A nil field is not set here: it is inherited (from the
// project's build section, then from the command line's defaults).
type Build struct {
	LDFlags *Flags `yaml:"ldflags" json:"ldflags,omitempty"`
	GCFlags *Flags `yaml:"gcflags" json:"gcflags,omitempty"`
	Tags    *List  `yaml:"tags" json:"tags,omitempty"`
	// Env is extra build environment (GOFLAGS=-mod=vendor, GOPRIVATE=...): the project's, then
	// the service's.
	Env Env `yaml:"env" json:"env,omitempty"`
	// PostBuild runs on each built binary, its path appended (a packer, a signer).
	PostBuild *Args `yaml:"postBuild" json:"postBuild,omitempty"`
	// QuickBuild builds hotpod dev's edits with build.Quick.
	QuickBuild *bool `yaml:"quickBuild" json:"quickBuild,omitempty"`
}

// Apply sets in o what b sets; what b leaves nil keeps o's value.
func (b Build) Apply(o *build.Options) {
	if b.LDFlags != nil {
		o.LDFlags = string(*b.LDFlags)
	}
	if b.GCFlags != nil {
		o.GCFlags = string(*b.GCFlags)
	}
	if b.Tags != nil {
		o.Tags = strings.Join(*b.Tags, ",")
	}
	o.Env = append(slices.Clip(o.Env), b.Env...)
	if b.PostBuild != nil {
		o.PostBuild = slices.Clone(*b.PostBuild)
	}
	if b.QuickBuild != nil {
		o.Quick = *b.QuickBuild
	}
}

// inherit gives each service the project's build settings it does not set itself.
func (c *Config) inherit() {
	for i := range c.Services {
		s := &c.Services[i].Build
		if s.LDFlags == nil {
			s.LDFlags = c.Build.LDFlags
		}
		if s.GCFlags == nil {
			s.GCFlags = c.Build.GCFlags
		}
		if s.Tags == nil {
			s.Tags = c.Build.Tags
		}
		if s.PostBuild == nil {
			s.PostBuild = c.Build.PostBuild
		}
		if s.QuickBuild == nil {
			s.QuickBuild = c.Build.QuickBuild
		}
		s.Env = append(slices.Clone(c.Build.Env), s.Env...)
		if len(s.Env) == 0 {
			s.Env = nil
		}
	}
}

// Flags is a flag string for the go command: written as a string ("-s -w") or a list of
// strings (joined with spaces, as ko's ldflags are).
type Flags string

func (f *Flags) UnmarshalYAML(n *yaml.Node) error {
	l, err := stringOrList(n)
	if err != nil {
		return err
	}
	*f = Flags(strings.Join(l, " "))
	return nil
}

// List is a list of strings, also written as one comma-separated string ("netgo,osusergo").
type List []string

func (l *List) UnmarshalYAML(n *yaml.Node) error {
	s, err := stringOrList(n)
	if err != nil {
		return err
	}
	out := List{}
	for _, e := range s {
		if n.Kind == yaml.ScalarNode {
			for _, part := range strings.Split(e, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
			continue
		}
		out = append(out, e)
	}
	*l = out
	return nil
}

// Args is a command: a string split at spaces (as --post-build is) or a list of its arguments.
type Args []string

func (a *Args) UnmarshalYAML(n *yaml.Node) error {
	s, err := stringOrList(n)
	if err != nil {
		return err
	}
	if n.Kind == yaml.ScalarNode && len(s) == 1 {
		s = strings.Fields(s[0])
	}
	*a = Args(s)
	return nil
}

// Env is environment as KEY=VALUE strings: written as a list of them or as a map.
type Env []string

func (e *Env) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		var out Env
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: want a string value", v.Line, k.Value)
			}
			out = append(out, k.Value+"="+v.Value)
		}
		*e = out
		return nil
	case yaml.SequenceNode:
		var out Env
		for _, v := range n.Content {
			if v.Kind != yaml.ScalarNode || !strings.Contains(v.Value, "=") || strings.HasPrefix(v.Value, "=") {
				return fmt.Errorf("line %d: want KEY=VALUE, got %q", v.Line, v.Value)
			}
			out = append(out, v.Value)
		}
		*e = out
		return nil
	}
	return fmt.Errorf("line %d: want a list of KEY=VALUE or a map", n.Line)
}

// Duration is a Go duration string ("10s", "1m30s").
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
		return fmt.Errorf("line %d: want a duration such as 10s or 1m30s, got %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// PortForward forwards Local on 127.0.0.1 to port Remote of the session's pods: those of the
// workload Kind/Name when set, else any pod of the session. Written as "LOCAL:REMOTE",
// "LOCAL:KIND/NAME:REMOTE", or "KIND/NAME:PORT" (the same port on both ends).
type PortForward struct {
	Local  int    `json:"local"`
	Kind   string `json:"kind,omitempty"` // deployment, statefulset, daemonset or pod
	Name   string `json:"name,omitempty"`
	Remote int    `json:"remote"`
}

func (p *PortForward) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a string such as 8080:deployment/api:8080", n.Line)
	}
	v, err := ParsePortForward(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*p = v
	return nil
}

func (p PortForward) String() string {
	if p.Kind == "" {
		return fmt.Sprintf("%d:%d", p.Local, p.Remote)
	}
	return fmt.Sprintf("%d:%s/%s:%d", p.Local, p.Kind, p.Name, p.Remote)
}

// forwardKinds maps what kubectl accepts as a workload kind to its canonical name.
var forwardKinds = map[string]string{
	"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
	"statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
	"daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
	"pod": "pod", "pods": "pod", "po": "pod",
}

// ParsePortForward reads "LOCAL:REMOTE", "LOCAL:KIND/NAME:REMOTE" or "KIND/NAME:PORT".
func ParsePortForward(s string) (PortForward, error) {
	bad := func(why string) (PortForward, error) {
		return PortForward{}, fmt.Errorf("%q: %s; write LOCAL:REMOTE or LOCAL:KIND/NAME:REMOTE, e.g. 8080:deployment/api:8080", s, why)
	}
	parts := strings.Split(s, ":")
	var p PortForward
	var local, target, remote string
	switch {
	case len(parts) == 2 && strings.Contains(parts[0], "/"):
		target, local, remote = parts[0], parts[1], parts[1]
	case len(parts) == 2:
		local, remote = parts[0], parts[1]
	case len(parts) == 3:
		local, target, remote = parts[0], parts[1], parts[2]
	default:
		return bad("not two or three parts")
	}
	var err error
	if p.Local, err = strconv.Atoi(local); err != nil || p.Local < 0 || p.Local > 65535 {
		return bad(fmt.Sprintf("local port %q is not a number from 0 to 65535", local))
	}
	if p.Remote, err = strconv.Atoi(remote); err != nil || p.Remote < 1 || p.Remote > 65535 {
		return bad(fmt.Sprintf("remote port %q is not a number from 1 to 65535", remote))
	}
	if target != "" {
		kind, name, ok := strings.Cut(target, "/")
		k, known := forwardKinds[strings.ToLower(kind)]
		switch {
		case !ok || name == "" || strings.Contains(name, "/"):
			return bad(fmt.Sprintf("%q is not KIND/NAME", target))
		case !known:
			return bad(fmt.Sprintf("kind %q is not deployment, statefulset, daemonset or pod", kind))
		}
		p.Kind, p.Name = k, name
	}
	return p, nil
}

// stringOrList reads a scalar as a one-element list, or a sequence of scalars.
func stringOrList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := []string{}
		for _, e := range n.Content {
			if e.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a string, got %s", e.Line, kindName(e))
			}
			out = append(out, e.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: want a string or a list of strings, got %s", n.Line, kindName(n))
}
