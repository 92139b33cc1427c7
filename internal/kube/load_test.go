package kube

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubeconfig writes a kubeconfig with the contexts named (each to server) and returns its path.
func kubeconfig(t *testing.T, server, current string, contexts ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"" + server + "\"}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n")
	for _, c := range contexts {
		b.WriteString("- name: " + c + "\n  context: {cluster: c, user: u, namespace: ns-" + c + "}\n")
	}
	b.WriteString("current-context: \"" + current + "\"\n")
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// refusing is the URL of a port nothing listens on.
func refusing(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "https://" + ln.Addr().String()
}

// Each way of naming no cluster gets a message that says which and what to do.
func TestLoadMessages(t *testing.T) {
	server := refusing(t)
	two := kubeconfig(t, server, "dev", "dev", "prod")
	noCurrent := kubeconfig(t, server, "", "dev", "prod")
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		name      string
		env       string // KUBECONFIG
		target    Selector
		want      []string
		noCluster bool
	}{
		{"KUBECONFIG names a missing file", missing, Selector{}, []string{"KUBECONFIG names " + missing + ", which does not exist"}, true},
		{"KUBECONFIG names an empty file", empty, Selector{}, []string{"KUBECONFIG (" + empty + ") names no cluster"}, true},
		{"--kubeconfig names a missing file", two, Selector{Kubeconfig: missing}, []string{"--kubeconfig " + missing, "no such file"}, false},
		{"--kubeconfig names an empty file", two, Selector{Kubeconfig: empty}, []string{"--kubeconfig " + empty + " names no cluster"}, true},
		{"unknown --context", two, Selector{Context: "staging"}, []string{"--context staging", "use one of dev, prod"}, false},
		{"unknown --context, --kubeconfig", missing, Selector{Kubeconfig: two, Context: "staging"}, []string{"--context staging", two, "use one of dev, prod"}, false},
		{"no current context", noCurrent, Selector{}, []string{"no current context", "dev, prod", "--context"}, false},
		{"cluster down", two, Selector{}, []string{server, `context "dev"`, "does not answer"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", c.env)
			_, err := Load(t.Context(), c.target)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errors.Is(err, ErrNoCluster) != c.noCluster {
				t.Errorf("errors.Is(%v, ErrNoCluster) = %v", err, !c.noCluster)
			}
		})
	}
}

// --kubeconfig wins over $KUBECONFIG, --context over the current context, -n over the
// context's namespace: kubectl's precedence.
func TestLoadPrecedence(t *testing.T) {
	server := refusing(t)
	env := kubeconfig(t, server, "dev", "dev")
	flag := kubeconfig(t, server, "prod", "prod", "staging")
	t.Setenv("KUBECONFIG", env)
	for _, c := range []struct {
		target      Selector
		context, ns string
	}{
		{Selector{}, "dev", "ns-dev"},
		{Selector{Namespace: "mine"}, "dev", "mine"},
		{Selector{Kubeconfig: flag}, "prod", "ns-prod"},
		{Selector{Kubeconfig: flag, Context: "staging"}, "staging", "ns-staging"},
		{Selector{Kubeconfig: flag, Context: "staging", Namespace: "mine"}, "staging", "mine"},
	} {
		cc, raw, err := load(c.target)
		if err != nil {
			t.Fatalf("%+v: %v", c.target, err)
		}
		ns, _, err := cc.Namespace()
		current := raw.CurrentContext
		if c.target.Context != "" {
			current = c.target.Context
		}
		if err != nil || ns != c.ns || current != c.context {
			t.Errorf("%+v: context %q namespace %q (%v); want %q %q", c.target, current, ns, err, c.context, c.ns)
		}
	}
}

// TestCheckSilentServer: an API server that accepts connections and never answers is reported
// after answerWithin, and Ctrl-C (ctx) ends the wait at once.
func TestCheckSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	c, err := Open(Selector{Kubeconfig: kubeconfig(t, "http://"+ln.Addr().String(), "dev", "dev")})
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { answerWithin = d }(answerWithin)
	answerWithin = 300 * time.Millisecond
	if err := c.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("silent server: %v", err)
	}
	answerWithin = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	t0 := time.Now()
	if err := c.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted check: %v", err)
	}
	if waited := time.Since(t0); waited > 30*time.Second {
		t.Fatalf("the interrupted check took %s", waited)
	}
}
