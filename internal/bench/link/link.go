// Package link is the network between the bench's CLI side and the cluster: direct, or shaped to
// a rate and a delay (a laptop uploading to a remote cluster). A shaped link is a network
// namespace joined to the host by a veth pair: the kernel shapes the rate (tc tbf on both ends,
// this kernel has no netem) and relays on the host's end add the delay. It needs root and
// iproute2, and only ever addresses the namespace and the host's end of the veth.
package link

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Link is direct, or shaped to a rate and a delay.
type Link struct {
	Rate  string // tc rate, e.g. "20mbit"; empty for direct
	Delay time.Duration
}

var spec = regexp.MustCompile(`^([0-9]+)(kbit|mbit|gbit):([0-9]+)ms$`)

// Parse reads "direct" or "RATE:DELAY" such as "20mbit:30ms".
func Parse(s string) (Link, error) {
	if s == "direct" {
		return Link{}, nil
	}
	m := spec.FindStringSubmatch(s)
	if m == nil {
		return Link{}, fmt.Errorf("--link %q: want direct or RATE:DELAY such as 20mbit:30ms", s)
	}
	d, _ := strconv.Atoi(m[3])
	return Link{Rate: m[1] + m[2], Delay: time.Duration(d) * time.Millisecond}, nil
}

// Direct reports whether the link is unshaped.
func (l Link) Direct() bool { return l.Rate == "" }

func (l Link) String() string {
	if l.Direct() {
		return "direct"
	}
	return fmt.Sprintf("%s:%dms", l.Rate, l.Delay.Milliseconds())
}
