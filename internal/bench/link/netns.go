package link

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

// The shaped link's namespace and veth. The delay is added by the relays on the host's end (half
// the RTT each way); the namespace reaches the cluster only through them: the API server and the
// registry.
const (
	netnsName = "hotpod-bench"
	hostIf    = "hpbench0"
	nsIf      = "hpbench1"
	nsAddr    = "10.203.0.2"
	// HostAddr is the host's end of the veth, where the relays listen, as the namespace sees it.
	HostAddr = "10.203.0.1"
)

// Shaped is a live network namespace with the link's shaping and the host's relays.
type Shaped struct {
	relays []net.Listener
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Setup makes the namespace and shapes it. relays maps each relay port on the host's end of the
// veth (HostAddr) to the address it leads to (the registry, the API server). Close undoes it.
func Setup(l Link, relays map[string]string) (*Shaped, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("--link %s needs root (network namespace and tc)", l)
	}
	teardown()
	steps := [][]string{
		{"ip", "netns", "add", netnsName},
		{"ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"ip", "link", "set", nsIf, "netns", netnsName},
		{"ip", "addr", "add", HostAddr + "/30", "dev", hostIf},
		{"ip", "link", "set", hostIf, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "addr", "add", nsAddr + "/30", "dev", nsIf},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", nsIf, "up"},
		{"ip", "netns", "exec", netnsName, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", netnsName, "ip", "route", "add", "default", "via", HostAddr},
		{"tc", "qdisc", "add", "dev", hostIf, "root", "tbf", "rate", l.Rate, "burst", "64kb", "latency", "2s"},
		{"ip", "netns", "exec", netnsName, "tc", "qdisc", "add", "dev", nsIf, "root", "tbf", "rate", l.Rate, "burst", "64kb", "latency", "2s"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			teardown()
			return nil, fmt.Errorf("set up the shaped link: %w (needs iproute2 with tc: apt-get install iproute2)", err)
		}
	}
	sl := &Shaped{}
	for port, target := range relays {
		ln, err := net.Listen("tcp", net.JoinHostPort(HostAddr, port))
		if err != nil {
			sl.Close()
			return nil, err
		}
		sl.relays = append(sl.relays, ln)
		go relay(ln, target, l.Delay/2)
	}
	return sl, nil
}

// Command is name with args run inside the namespace.
func (s *Shaped) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netnsName, name}, args...)...)
}

// Close stops the relays and removes the namespace and the veth.
func (s *Shaped) Close() {
	for _, ln := range s.relays {
		ln.Close()
	}
	teardown()
}

func teardown() {
	_ = exec.Command("ip", "link", "del", hostIf).Run()
	_ = exec.Command("ip", "netns", "del", netnsName).Run()
}

// PortOf is the port of a host:port, 5000 (the registry's) when it has none.
func PortOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "5000"
	}
	return p
}

// relay copies every connection accepted on ln to target, each direction delayed by delay.
func relay(ln net.Listener, target string, delay time.Duration) {
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
			go func() { delayedCopy(up, c, delay); done <- struct{}{} }()
			go func() { delayedCopy(c, up, delay); done <- struct{}{} }()
			<-done
		}()
	}
}

// delayedCopy copies src to dst, each chunk written delay after it was read: propagation delay
// without limiting throughput (chunks are in flight together, as on a long wire).
func delayedCopy(dst io.Writer, src io.Reader, delay time.Duration) {
	if delay <= 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			for range q {
			}
			return
		}
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
	go relay(ln, net.JoinHostPort(HostAddr, PortOf(registry)), 0)
	return nil
}
