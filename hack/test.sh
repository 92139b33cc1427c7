#!/usr/bin/env bash
# hack/test.sh — hotpod's whole test suite, as CI runs it:
#   lint (gofmt, go vet, staticcheck, go mod tidy, the build for macOS), unit and integration tests with -race (the fuzz
#   seed corpora included; FUZZTIME=60s adds active fuzzing), and the end-to-end tests against the real local cluster
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
# Build outputs and data sets do not belong in git: no tracked file over 1 MB (the index, so a
# staged one is caught before its commit).
big=$(git ls-files -s | sed -E 's/^[0-7]+ ([0-9a-f]+) [0-9]+\t/\1 /' | git cat-file --batch-check='%(objectsize) %(rest)' |
	awk '$1 ~ /^[0-9]+$/ && $1 > 1048576 { printf "  %s (%.1f MB)\n", substr($0, length($1) + 2), $1 / 1048576 }')
[[ -z "$big" ]] || { printf 'tracked files over 1 MB (a build output? git rm --cached it and add it to .gitignore):\n%s\n' "$big"; exit 1; }
unformatted=$(gofmt -l $(git ls-files '*.go'))
[[ -z "$unformatted" ]] || { echo "gofmt would change: $unformatted"; exit 1; }
go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
go vet ./...
"$tools/staticcheck" ./...
# Developers run the CLI on macOS too (and the agent beside it with --local): it must compile there.
GOOS=darwin GOARCH=arm64 go build ./...

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
# The e2e package runs every cluster test in turn (about 10 minutes under -race on 2 cores):
# past go test's default 10-minute bound, which would end it mid-test.
go test -race -count=1 -timeout 40m ./...

if [[ "$e2e" == 1 ]]; then
	say "bench --quick (completes with sane numbers; speed is not asserted)"
	go build -o "${TMPDIR:-/tmp}/hotpod-ci" ./cmd/hotpod
	"${TMPDIR:-/tmp}/hotpod-ci" bench --quick --default-repo 127.0.0.1:5000/bench
	rm -f "${TMPDIR:-/tmp}/hotpod-ci"
fi

# The seed corpora (testdata/fuzz) ran with the tests above. Active fuzzing finds new inputs at
# random, so it is opt-in to keep CI deterministic: FUZZTIME=60s hack/test.sh
[[ -n "${FUZZTIME:-}" ]] || { say "all passed"; exit 0; }
say "fuzz ($FUZZTIME per target)"
for target in internal/delta:FuzzApply internal/agentapi:FuzzParseUpdateParams internal/agentapi:FuzzCheckFilePath internal/agent:FuzzReadDAP internal/manifest:FuzzRead internal/config:FuzzLoad internal/initproject:FuzzDockerfile internal/report:FuzzDecode; do
	if ! out=$(go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$FUZZTIME" "./${target%%:*}" 2>&1); then
		echo "$out"
		echo "FAIL ${target}: the failing input is saved under ${target%%:*}/testdata/fuzz; fix the code and keep it as a seed"
		exit 1
	fi
	echo "ok ${target}"
done
say "all passed"
