package agent

import (
	"bufio"
	"io"
	"sync"
)

// output fans the app's output out: to the agent's own stdout/stderr (so `kubectl logs` keeps
// working), to streaming clients, and into a ring of the last lines (shown when the app crashes).
type output struct {
	mu   sync.Mutex
	ring []string
	next int
	full bool
	subs map[chan []byte]struct{}
}

func newOutput(lines int) *output {
	return &output{ring: make([]string, lines), subs: map[chan []byte]struct{}{}}
}

// copy reads r line by line until EOF, passing each line to w and the subscribers.
func (o *output) copy(w io.Writer, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			_, _ = w.Write(line)
			o.add(line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

func (o *output) add(line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(line)
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	o.ring[o.next] = s
	o.next = (o.next + 1) % len(o.ring)
	if o.next == 0 {
		o.full = true
	}
	for c := range o.subs {
		select {
		case c <- append([]byte(nil), line...):
		default: // a slow reader loses lines rather than stalling the app
		}
	}
}

// last returns the most recent lines, oldest first, and forgets them.
func (o *output) last() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	if o.full {
		out = append(out, o.ring[o.next:]...)
	}
	out = append(out, o.ring[:o.next]...)
	clear(o.ring)
	o.next, o.full = 0, false
	return out
}

func (o *output) subscribe() (<-chan []byte, func()) {
	c := make(chan []byte, 256)
	o.mu.Lock()
	o.subs[c] = struct{}{}
	o.mu.Unlock()
	return c, func() {
		o.mu.Lock()
		delete(o.subs, c)
		o.mu.Unlock()
	}
}

// reset forgets the lines kept so far: a new run's crash shows only its own output.
func (o *output) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.ring)
	o.next, o.full = 0, false
}
