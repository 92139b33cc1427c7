package report

import (
	"bytes"
	"hash/fnv"
	"io"
	"os"
	"sync"
)

// PrefixWriter starts every line with "<name> | ", so each app's output stands apart from
// hotpod's and from the other pods'. On a terminal the prefix is coloured, one colour per name.
type PrefixWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  []byte
	midLine bool
}

// NewPrefixWriter writes to w with name as the prefix.
func NewPrefixWriter(w io.Writer, name string) *PrefixWriter {
	prefix := name + " | "
	if isTerminal(w) && os.Getenv("NO_COLOR") == "" {
		h := fnv.New32a()
		h.Write([]byte(name))
		colour := []string{"31", "32", "33", "34", "35", "36"}[h.Sum32()%6]
		prefix = "\x1b[" + colour + "m" + name + "\x1b[0m | "
	}
	return &PrefixWriter{w: w, prefix: []byte(prefix)}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	var out bytes.Buffer
	for len(b) > 0 {
		if !p.midLine {
			out.Write(p.prefix)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out.Write(b)
			p.midLine = true
			break
		}
		out.Write(b[:i+1])
		b = b[i+1:]
		p.midLine = false
	}
	_, err := p.w.Write(out.Bytes())
	return n, err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
