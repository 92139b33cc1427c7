#!/usr/bin/env bash
# hack/demo.sh — watch hotpod's loop work on examples/hello: it builds hotpod, starts
# `hotpod dev` on a copy of the example, edits the greeting twice while it runs, and shows each
# edit answering, with its timings. Leaves nothing behind.
#
#   hack/demo.sh           in Kubernetes: 2 replicas on the project's local cluster (hack/cluster.sh),
#                          brought up when it is not running (needs root; the first time builds
#                          Kubernetes: ~6-10 min on 2 cores) and taken down after (KEEP_CLUSTER=1 keeps it)
#   hack/demo.sh --local   the app as a local process: needs only Go
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
mode=cluster
[[ "${1:-}" == --local ]] && mode=local
work=$(mktemp -d)
pid=
started_cluster=
cleanup() {
	if [[ -n "$pid" ]]; then kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
	if [[ -n "$started_cluster" && -z "${KEEP_CLUSTER:-}" ]]; then
		echo "── taking down the cluster this demo started (KEEP_CLUSTER=1 keeps it)"
		hack/cluster.sh down
	fi
}
trap cleanup EXIT

if [[ $mode == cluster ]]; then
	if [[ $EUID -ne 0 ]]; then
		echo "demo: the local cluster needs root (it runs containerd and the kubelet): run 'sudo hack/demo.sh', or 'hack/demo.sh --local'" >&2
		exit 1
	fi
	if ! hack/cluster.sh status >/dev/null 2>&1; then
		echo "── no local cluster is running: bringing one up with hack/cluster.sh up"
		echo "   (the first time builds Kubernetes from the Go module proxy: CPU-bound, about 6-10 minutes on an idle 2-core machine, much longer on a busy one; later ~10 s)"
		started_cluster=1
		hack/cluster.sh up >/dev/null
	fi
	eval "$(hack/cluster.sh env)"
fi

echo "── building hotpod"
go build -o "$work/hotpod" ./cmd/hotpod
mkdir -p "$work/hello/k8s"
cp examples/hello/main.go "$work/hello/"
printf 'module example.com/hello\n\ngo 1.24\n' >"$work/hello/go.mod"
sed 's#ko://github.com/hotpod/hotpod/examples/hello#ko://example.com/hello#' examples/hello/k8s/hello.yaml >"$work/hello/k8s/hello.yaml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)

if [[ $mode == cluster ]]; then
	ns=hotpod-demo
	kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
	echo "── hotpod dev -f k8s -n $ns --port-forward $port:8080   (2 replicas; in $work/hello)"
	(cd "$work/hello" && exec "$work/hotpod" dev -f k8s -n "$ns" --port-forward "$port:8080" \
		--default-repo 127.0.0.1:5000/demo --base-image 127.0.0.1:5000/hotpod/base-nonroot:latest) &
else
	echo "── hotpod dev --local --ready http://127.0.0.1:$port/healthz   (in $work/hello)"
	(cd "$work/hello" && PORT=$port exec "$work/hotpod" dev --local --ready "http://127.0.0.1:$port/healthz") &
fi
pid=$!

answer() { curl -fsS "http://127.0.0.1:$port/" 2>/dev/null || true; }
await() { # TEXT: wait until the app answers TEXT
	for _ in $(seq 1 1800); do
		[[ "$(answer)" == "$1" ]] && return 0
		kill -0 "$pid" 2>/dev/null || { echo "demo: hotpod exited" >&2; return 1; }
		sleep 0.1
	done
	echo "demo: the app never answered '$1'" >&2
	return 1
}
await "hello from hotpod"
sleep 0.5
echo "── curl → $(answer)"
for text in "hello, edited while running" "hello, edited again"; do
	sleep 1
	echo "── editing main.go: greeting = \"$text\""
	sed -i "s/^const greeting = .*/const greeting = \"$text\"/" "$work/hello/main.go"
	await "$text"
	sleep 0.5
	echo "── curl → $(answer)"
done
sleep 0.5
echo "── Ctrl-C"
kill -INT "$pid"
wait "$pid" || true
pid=
[[ $mode == cluster ]] && kubectl delete namespace hotpod-demo --wait=false >/dev/null 2>&1 || true
