package agentapi_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/agentapi"
)

func TestUpdateParamsRoundTrip(t *testing.T) {
	for _, p := range []agentapi.UpdateParams{
		{Wait: agentapi.WaitReady, Timeout: 1500 * time.Millisecond},
		{Wait: agentapi.WaitStarted, Timeout: agentapi.DefaultTimeout},
	} {
		q, err := url.ParseQuery(p.Encode())
		if err != nil {
			t.Fatal(err)
		}
		got, err := agentapi.ParseUpdateParams(q)
		if err != nil || got != p {
			t.Fatalf("%+v → %q → %+v, %v", p, p.Encode(), got, err)
		}
	}
}

func TestParseUpdateParamsRefusesBadValues(t *testing.T) {
	for _, q := range []string{"wait=soon", "timeout_ms=-1", "timeout_ms=0", "timeout_ms=abc", "timeout_ms=99999999999"} {
		v, _ := url.ParseQuery(q)
		if _, err := agentapi.ParseUpdateParams(v); err == nil {
			t.Errorf("%s accepted", q)
		}
	}
	p, err := agentapi.ParseUpdateParams(url.Values{})
	if err != nil || p.Wait != agentapi.WaitStarted || p.Timeout != agentapi.DefaultTimeout {
		t.Fatalf("defaults: %+v %v", p, err)
	}
}

// FuzzParseUpdateParams: the agent parses these from every request; whatever arrives, it must not
// panic, and anything it accepts is within bounds.
func FuzzParseUpdateParams(f *testing.F) {
	f.Add("wait=ready&timeout_ms=1000")
	f.Add("wait=started")
	f.Add("timeout_ms=600000")
	f.Add("%zz&wait")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := agentapi.ParseUpdateParams(q)
		if err != nil {
			return
		}
		if p.Timeout <= 0 || p.Timeout > agentapi.MaxTimeout || (p.Wait != agentapi.WaitReady && p.Wait != agentapi.WaitStarted) {
			t.Fatalf("accepted out-of-bounds params %+v from %q", p, raw)
		}
	})
}

func TestCheckFilePath(t *testing.T) {
	for _, ok := range []string{"a", "a/b.txt", "static/css/site css.css", ".hidden", "a/..b", "...", "ünï/cöde"} {
		if err := agentapi.CheckFilePath(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "..", "../a", "a/../../b", "a/./b", "./a", "a//b", "a/", "a\\..\\b", "a\x00"} {
		if err := agentapi.CheckFilePath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzCheckFilePath: the agent checks every file path a request names with it; whatever it
// accepts stays under the sync dir once joined to it.
func FuzzCheckFilePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/abs", "a//b", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if agentapi.CheckFilePath(rel) != nil {
			return
		}
		root := "/sync"
		p := filepath.Join(root, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, root+"/") || filepath.Clean(p) != root+"/"+rel {
			t.Fatalf("%q accepted but joins to %q", rel, p)
		}
	})
}
