package kube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func sessionSecret(ns, beat, builds string) corev1.Secret {
	ann := map[string]string{HolderKey: "42@laptop", HeartbeatKey: beat,
		ObjectsKey: `[{"Group":"apps","Version":"v1","Resource":"deployments","Kind":"Deployment","Namespace":"` + ns + `","Name":"hello"}]`}
	if builds != "" {
		ann[BuildsKey] = builds
	}
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hotpod-s1", Namespace: ns, Annotations: ann},
		Data: map[string][]byte{"token": []byte("t0k")}}
}

// A session with Secrets in two namespaces is one record: every namespace, the newest heartbeat,
// for each service the newest build (one Secret may lag while a publication is under way).
func TestSessionRecordFoldsItsSecrets(t *testing.T) {
	r := SessionRecord{ID: "s1", Builds: map[string]Build{}}
	for _, sec := range []corev1.Secret{
		sessionSecret("a", "2025-01-02T10:00:00Z", `{"ko://example.com/hello":{"sha256":"old","iteration":2,"at":"2025-01-02T09:59:00Z"}}`),
		sessionSecret("b", "2025-01-02T10:00:10Z", `{"ko://example.com/hello":{"sha256":"new","iteration":3,"at":"2025-01-02T10:00:05Z"}}`),
	} {
		if err := r.add(sec); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(r.Namespaces, ",") != "a,b" || r.Holder != "42@laptop" || r.Token != "t0k" ||
		!r.Heartbeat.Equal(time.Date(2025, 1, 2, 10, 0, 10, 0, time.UTC)) {
		t.Fatalf("record %+v", r)
	}
	if b := r.Builds["ko://example.com/hello"]; b.SHA256 != "new" || b.Iteration != 3 {
		t.Fatalf("build %+v, want the newest", b)
	}
	if len(r.Objects) != 1 || r.Objects[0].Kind != "Deployment" || r.Objects[0].Namespace != "a" {
		t.Fatalf("objects %+v", r.Objects)
	}
	bad := SessionRecord{ID: "s1", Builds: map[string]Build{}}
	if err := bad.add(sessionSecret("a", "x", `{"ko://example.com/hello":`)); err == nil || !strings.Contains(err.Error(), BuildsKey) {
		t.Fatalf("a corrupt builds annotation: %v", err)
	}
}
