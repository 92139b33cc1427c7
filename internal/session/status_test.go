package session

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotpod/hotpod/internal/kube"
	"github.com/hotpod/hotpod/internal/testutil"
)

func statuses() []Status {
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	one := 1
	return []Status{
		{SessionRecord: kube.SessionRecord{ID: "79c0856f", Holder: "4242@laptop", Heartbeat: now.Add(-4 * time.Second), Alive: true,
			Namespaces: []string{"shop"}, Builds: map[string]kube.Build{
				"ko://example.com/shop/cmd/api": {SHA256: "1a2b3c4d5e6f7a8b9c0d", Iteration: 3, At: now.Add(-time.Minute)},
				"ko://example.com/shop/cmd/web": {SHA256: "ffeeddccbbaa99887766", Iteration: 1, At: now.Add(-time.Hour)}}},
			Agents: []AgentStatus{
				{Namespace: "shop", Pod: "api-7688f79db8-fwkk2", Container: "api", Service: "ko://example.com/shop/cmd/api", SHA256: "1a2b3c4d5e6f7a8b9c0d", Current: true, State: "ready", Restarts: 2},
				{Namespace: "shop", Pod: "api-7688f79db8-pc5lr", Container: "api", Service: "ko://example.com/shop/cmd/api", SHA256: "9f8e7d6c5b4a39281706", State: "ready", ContainerRestarts: 1},
				{Namespace: "shop", Pod: "web-5d9c7-x2x4q", Container: "web", Service: "ko://example.com/shop/cmd/web", SHA256: "ffeeddccbbaa99887766", Current: true, State: "exited", Restarts: 1, ExitCode: &one},
				{Namespace: "shop", Pod: "web-5d9c7-x2x4q", Container: "sidecar", Service: "ko://example.com/shop/cmd/sidecar", SHA256: "0011", State: "ready"},
				{Namespace: "shop", Pod: "api-7688f79db8-zzzzz", Container: "api", Service: "ko://example.com/shop/cmd/api", Error: "container not running (pod Pending)"},
			}},
		{SessionRecord: kube.SessionRecord{ID: "8fb0985b", Holder: "77@ci-runner", Heartbeat: now.Add(-26 * time.Hour),
			Namespaces: []string{"a", "b"}, Builds: map[string]kube.Build{}}},
	}
}

// The text a person reads: alive or left over (and what becomes of it), one line per agent, a
// pod not on the session's build flagged NOT current, a crashed app with its exit code.
func TestWriteTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, statuses(), time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", "status.txt"), b.Bytes())
	for _, want := range []string{"alive: hotpod 4242@laptop", "left over", "takes it over", "NOT current (the session's is 1a2b3c4d5e6f)", "current: iteration 3, 11:59:00", "exited (exit 1)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status text lacks %q", want)
		}
	}
}

// -o json: the session's record without its token, every agent with its verdict.
func TestStatusJSONKeepsTheTokenOut(t *testing.T) {
	ss := statuses()
	ss[0].Token = "s3cr3t"
	b, err := json.Marshal(ss)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("the token is in the JSON: %s", b)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[0]["session"] != "79c0856f" || back[0]["alive"] != true || len(back[0]["agents"].([]any)) != 5 ||
		back[0]["agents"].([]any)[1].(map[string]any)["current"] != false {
		t.Fatalf("json %s", b)
	}
}
