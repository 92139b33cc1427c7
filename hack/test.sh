#!/usr/bin/env bash
# hack/test.sh — hotpod's whole test suite, as CI runs it:
#   lint (gofmt, go vet, staticcheck, go mod tidy), unit and integration tests with -race, a short
#   run of every fuzz target, and the end-to-end tests against the real local cluster
#   (hack/cluster.sh: brought up if it is not running, and taken down again afterwards).
# Needs root for the cluster. E2E=0 skips the cluster and the e2e tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
t0=$SECONDS
say() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - t0))"; }

say "lint"
STATICCHECK_VERSION=v0.7.0
tools="${XDG_CACHE_HOME:-$HOME/.cache}/hotpod/tools/staticcheck-$STATICCHECK_VERSION"
if [[ ! -x "$tools/staticcheck" ]]; then
	GOBIN="$tools" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
unformatted=$(gofmt -l $(git ls-files '*.go'))
[[ -z "$unformatted" ]] || { echo "gofmt would change: $unformatted"; exit 1; }
go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
go vet ./...
"$tools/staticcheck" ./...

e2e=${E2E:-1}
if [[ "$e2e" == 1 ]]; then
	say "cluster"
	if ! hack/cluster.sh status >/dev/null 2>&1; then
		trap 'say "cluster down"; hack/cluster.sh down' EXIT
		hack/cluster.sh up >/dev/null
	fi
	eval "$(hack/cluster.sh env)"
	export HOTPOD_E2E=1
fi

say "tests (-race)"
go test -race -count=1 ./...

say "fuzz (10 s per target)"
for target in internal/delta:FuzzApply internal/agentapi:FuzzParseUpdateParams; do
	go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 10s "./${target%%:*}" >/dev/null
	echo "ok ${target}"
done
say "all passed"
