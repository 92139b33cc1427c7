#!/usr/bin/env bash
# Sourced by hack/cluster.sh: builds (once) the Kubernetes components from the Go module proxy.
# Kubernetes is not a normal Go dependency (its staging modules are replaced by ./staging paths
# upstream), so a scratch module pins k8s.io/kubernetes and maps every staging module to its
# published v0.<minor>.<patch>.

k8s_gen_module() {
	local v="v$K8S_VERSION" staging="v0.${K8S_VERSION#1.}" modfile
	log "resolving k8s.io/kubernetes $v from the module proxy"
	mkdir -p "$SRC_DIR"
	modfile=$(cd "$SRC_DIR" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
	[[ -f "$modfile" ]] || die "could not download k8s.io/kubernetes@$v go.mod (is the Go module proxy reachable?)"
	{
		printf 'module hotpod.local/k8s\n\n'
		grep -E '^(go|godebug) ' "$modfile"
		printf '\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$v"
		grep -E '^\s+k8s.io/[a-z0-9-]+ => \./staging/src/' "$modfile" | awk -v s="$staging" '{print "\t" $1 " => " $1 " " s}'
		printf ')\n'
	} >"$SRC_DIR/go.mod"
	cat >"$SRC_DIR/tools.go" <<-'GO'
	//go:build tools

	package tools

	import (
		_ "k8s.io/kubernetes/cmd/kube-apiserver"
		_ "k8s.io/kubernetes/cmd/kube-controller-manager"
		_ "k8s.io/kubernetes/cmd/kube-proxy"
		_ "k8s.io/kubernetes/cmd/kube-scheduler"
		_ "k8s.io/kubernetes/cmd/kubelet"
	)
	GO
	(cd "$SRC_DIR" && go mod tidy) || die "go mod tidy of the Kubernetes scratch module failed"
}

k8s_build() {
	[[ -s "$SRC_DIR/go.sum" ]] || k8s_gen_module
	local todo=() b
	for b in "${K8S_BINS[@]}"; do [[ -x "$BIN_DIR/$b" ]] || todo+=("k8s.io/kubernetes/cmd/$b"); done
	((${#todo[@]})) || return 0
	local ver="v$K8S_VERSION" minor="${K8S_VERSION#1.}" ld="" p t=$SECONDS
	minor="${minor%%.*}"
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ld+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	log "building ${#todo[@]} Kubernetes binaries (first time only: about 10 min on 2 cores; cached in $BIN_DIR)"
	mkdir -p "$BIN_DIR.tmp"
	(cd "$SRC_DIR" && go build -trimpath -tags selinux,notest -ldflags "-s -w$ld" -o "$BIN_DIR.tmp/" "${todo[@]}") ||
		die "building Kubernetes failed (see above)"
	mkdir -p "$BIN_DIR"
	mv "$BIN_DIR.tmp"/* "$BIN_DIR/" && rmdir "$BIN_DIR.tmp"
	log "Kubernetes binaries built in $((SECONDS - t))s"
}
