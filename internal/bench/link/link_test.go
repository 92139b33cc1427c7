package link

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Link{
		"direct":      {},
		"20mbit:30ms": {Rate: "20mbit", Delay: 30 * time.Millisecond},
		"500kbit:0ms": {Rate: "500kbit"},
	} {
		got, err := Parse(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("Parse(%q) = %+v, %v (String %q)", in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "20mbit", "fast:1ms", "20mbit:30", "-1mbit:3ms"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// A relay passes every byte both ways, each way at least its delay later: a round trip through
// it takes at least twice the delay (a floor, never a ceiling: the machine may be slow).
func TestRelayDelaysEachWay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const delay = 40 * time.Millisecond
	go relay(ln, echo.Addr().String(), delay)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: several chunks
	start := time.Now()
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Errorf("round trip %s through a relay of %s each way", rtt, delay)
	}
	if !bytes.Equal(got, msg) {
		t.Error("the bytes came back changed")
	}
}
