package agent

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// readDAP reads what a debugger client sends through the agent: any bytes. It never allocates
// more than maxDAPMessage for a body, and a message it accepts is its header (lines ended by
// CRLF, as DAP writes them) and a body of the announced length, read as it came.
func FuzzReadDAP(f *testing.F) {
	for _, s := range []string{
		"Content-Length: 2\r\n\r\n{}",
		"content-length:  13\r\nX-Other: a\r\n\r\n{\"seq\":1,\"a\"}",
		"Content-Length: 99999999999\r\n\r\n",
		"Content-Length: -1\r\n\r\n",
		"Content-Length: 5\r\n\r\nab",
		"\r\n{}",
		"Content-Length: 0\r\n\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		frame, body, err := readDAP(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			if frame != nil || body != nil {
				t.Fatalf("an error (%v) with a message", err)
			}
			return
		}
		if len(body) > maxDAPMessage {
			t.Fatalf("a body of %d bytes", len(body))
		}
		if !bytes.HasSuffix(frame, append([]byte("\r\n\r\n"), body...)) || !bytes.Contains(in, body) {
			t.Fatalf("frame %q, body %q from %q", frame, body, in)
		}
		head := string(frame[:len(frame)-len(body)])
		if !strings.Contains(strings.ToLower(head), "content-length") || !strings.Contains(head, strconv.Itoa(len(body))) {
			t.Fatalf("body of %d bytes under the header %q", len(body), head)
		}
	})
}

func TestReadDAPRefusesHugeMessages(t *testing.T) {
	_, _, err := readDAP(bufio.NewReader(strings.NewReader("Content-Length: 99999999999\r\n\r\n")))
	if err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("a 100 GB message: %v", err)
	}
}
