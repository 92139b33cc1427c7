#!/usr/bin/env bash
# hack/demo.sh — watch the loop work: builds hotpod, runs `hotpod dev --local` on a copy of
# examples/hello, edits the greeting twice while it runs, and shows each edit answering with its
# timings. Needs only Go. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"
work=$(mktemp -d)
pid=
cleanup() {
	[[ -n "$pid" ]] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "── building hotpod"
go build -o "$work/hotpod" ./cmd/hotpod
mkdir "$work/hello"
cp examples/hello/main.go "$work/hello/"
printf 'module example.com/hello\n\ngo 1.24\n' >"$work/hello/go.mod"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)

echo "── hotpod dev --local --ready http://127.0.0.1:$port/healthz   (in $work/hello)"
(cd "$work/hello" && PORT=$port exec "$work/hotpod" dev --local --ready "http://127.0.0.1:$port/healthz") &
pid=$!

answer() { curl -fsS "http://127.0.0.1:$port/" 2>/dev/null || true; }
await() { # TEXT: wait until the app answers TEXT
	for _ in $(seq 1 600); do
		[[ "$(answer)" == "$1" ]] && return 0
		sleep 0.1
	done
	echo "demo: the app never answered '$1'" >&2
	return 1
}
await "hello from hotpod"
echo "── curl → $(answer)"
for text in "hello, edited while running" "hello, edited again"; do
	sleep 1
	echo "── editing main.go: greeting = \"$text\""
	sed -i "s/^const greeting = .*/const greeting = \"$text\"/" "$work/hello/main.go"
	await "$text"
	sleep 0.2
	echo "── curl → $(answer)"
done
sleep 0.5
echo "── Ctrl-C"
kill -INT "$pid"
wait "$pid" || true
pid=
