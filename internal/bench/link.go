package bench

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Link is the network between the CLI and the cluster: direct, or shaped to a rate and a delay
// (a laptop uploading to a remote cluster).
type Link struct {
	Rate  string // tc rate, e.g. "20mbit"; empty for direct
	Delay time.Duration
}

var linkSpec = regexp.MustCompile(`^([0-9]+)(kbit|mbit|gbit):([0-9]+)ms$`)

// ParseLink reads "direct" or "RATE:DELAY" such as "20mbit:30ms".
func ParseLink(s string) (Link, error) {
	if s == "direct" {
		return Link{}, nil
	}
	m := linkSpec.FindStringSubmatch(s)
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
