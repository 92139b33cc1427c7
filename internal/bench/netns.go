package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

// registryHost is the host:port of an image repository such as 127.0.0.1:5000/bench.
func registryHost(repo string) string { return strings.SplitN(repo, "/", 2)[0] }

// The shaped link: a network namespace joined to the host by a veth pair, with tc netem on both
// ends (half the delay each way, the rate each way). Only the namespace and the host's end of the
// veth are ever addressed.
const (
	netnsName = "hotpod-bench"
	hostIf    = "hpbench0"
	nsIf      = "hpbench1"
	hostAddr  = "10.203.0.1"
	nsAddr    = "10.203.0.2"
)

// shapedLink is a live network namespace with the link's shaping.
type shapedLink struct {
	relay net.Listener
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupLink makes the namespace and shapes it. registry is the cluster registry on the host's
// loopback; the namespace reaches it through a relay on the host's end of the veth.
func setupLink(l Link, registry string) (*shapedLink, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("--link %s needs root (network namespace and tc)", l)
	}
	teardownLink()
	half := fmt.Sprintf("%dus", l.Delay.Microseconds()/2)
	steps := [][]string{
		{"ip", "netns", "add", netnsName},
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"ip", "link", "set", nsIf, "netns", netnsName},
		{"ip", "addr", "add", hostAddr + "/30", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "addr", "add", nsAddr + "/30", "dev", nsIf},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", nsIf, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", netnsName, "ip", "route", "add", "default", "via", hostAddr},
		{"tc", "qdisc", "add", "dev", hostIf, "root", "netem", "delay", half, "rate", l.Rate, "limit", "100000"},
		{"ip", "netns", "exec", netnsName, "tc", "qdisc", "add", "dev", nsIf, "root", "netem", "delay", half, "rate", l.Rate, "limit", "100000"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			teardownLink()
			return nil, fmt.Errorf("set up the shaped link: %w (needs iproute2 with tc: apt-get install iproute2)", err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(hostAddr, portOf(registry)))
	if err != nil {
		teardownLink()
		return nil, err
	}
	go relay(ln, registry)
	return &shapedLink{relay: ln}, nil
}

func (s *shapedLink) close() {
	s.relay.Close()
	teardownLink()
}

func teardownLink() {
	_ = exec.Command("ip", "link", "del", hostIf).Run()
	_ = exec.Command("ip", "netns", "del", netnsName).Run()
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "5000"
	}
	return p
}

// relay copies every connection accepted on ln to target.
func relay(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// InsideRelay runs in the namespace: the registry's loopback address there leads through the
// shaped veth to the host's relay, so image references are the same inside and out.
func InsideRelay(ctx context.Context, registry string) error {
	ln, err := net.Listen("tcp", registry)
	if err != nil {
		return fmt.Errorf("registry relay in the namespace: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go relay(ln, net.JoinHostPort(hostAddr, portOf(registry)))
	return nil
}
