#!/usr/bin/env bash
# hack/bench-delta.sh — runs internal/delta's BenchmarkShip (raw, full and delta patches of
# go-built examples/hello and examples/seedapp) and writes its output, headed by the machine,
# its load and the date, to docs/bench/delta-DATE.txt. docs/delta.md's tables come from there.
#   hack/bench-delta.sh            # -benchtime 3x
#   BENCHTIME=5x hack/bench-delta.sh
# Sizes are deterministic for a Go version; times depend on the machine and what else runs on
# it: the header records the load average before and after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
out="docs/bench/delta-$(date -u +%F).txt"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
{
	echo "# go test -run '^\$' -bench Ship -benchtime ${BENCHTIME:-3x} ./internal/delta/"
	echo "# date: $(date -u '+%F %T') UTC"
	echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- internal/delta examples || echo ' (with local changes)')"
	echo "# machine: $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
	echo "# $(go version); $(go list -m github.com/klauspost/compress)"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$tmp"
go test -run '^$' -bench Ship -benchtime "${BENCHTIME:-3x}" -timeout 60m ./internal/delta/ | tee -a "$tmp"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
