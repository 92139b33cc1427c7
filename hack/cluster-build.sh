#!/usr/bin/env bash
# Sourced by hack/cluster.sh: builds (once) the Kubernetes components from the Go module proxy.
# Kubernetes is not a normal Go dependency (its staging modules are replaced by ./staging paths
# upstream), so a scratch module pins k8s.io/kubernetes and maps every staging module to its
# published v0.<minor>.<patch>.

# since T: the time elapsed since $SECONDS was T, as 4m05s.
since() {
	local s=$((SECONDS - $1))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}

k8s_gen_module() {
	local v="v$K8S_VERSION" staging="v0.${K8S_VERSION#1.}" modfile t=$SECONDS
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
	log "downloading the modules Kubernetes needs (go mod tidy; ~760 MB into $GOMODCACHE)"
	(cd "$SRC_DIR" && go mod tidy) || die "go mod tidy of the Kubernetes scratch module failed"
	log "modules ready in $(since "$t")"
}

# compiled LOG: how many packages go build -v has named in LOG (its other lines are errors).
compiled() { grep -c '^[[:alnum:]_./-]*$' "$1" || true; }

# progress_ticker WHAT LOG T PARENT: every $PROGRESS_EVERY s (30), WHAT's packages compiled so
# far and the time since T, until LOG.done exists or PARENT is gone.
progress_ticker() {
	local every=${PROGRESS_EVERY:-30}
	local next=$((SECONDS + every))
	while [[ ! -e "$2.done" ]] && kill -0 "$4" 2>/dev/null; do
		sleep 1
		if ((SECONDS >= next)) && [[ ! -e "$2.done" ]]; then
			log "$1: $(compiled "$2") packages compiled, $(since "$3")"
			next=$((SECONDS + every))
		fi
	done
}

# k8s_build builds the binaries that are missing, one go build each, so that each finished one
# is kept and the log says which one runs. It is CPU-bound: ~2,450 packages (~2,200 of them
# Kubernetes and its dependencies) compiled once into the shared build cache, then five links
# of 70-100 MB binaries; the later binaries reuse most of the first one's packages.
k8s_build() {
	local t0=$SECONDS
	[[ -s "$SRC_DIR/go.sum" ]] || k8s_gen_module
	local todo=() b
	for b in "${K8S_BINS[@]}"; do [[ -x "$BIN_DIR/$b" ]] || todo+=("$b"); done
	((${#todo[@]})) || return 0
	local ver="v$K8S_VERSION" minor="${K8S_VERSION#1.}" ld="" p
	minor="${minor%%.*}"
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ld+=" -X $p.gitVersion=$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	log "building ${#todo[@]} Kubernetes binaries on $(nproc) cores, one after the other (first time only, cached in $BIN_DIR): ~2,450 packages to compile, CPU-bound: the busier the machine, the longer"
	mkdir -p "$BIN_DIR.tmp" "$BIN_DIR"
	local i=0 tb vlog ticker ok
	for b in "${todo[@]}"; do
		i=$((i + 1))
		tb=$SECONDS vlog="$BIN_DIR.tmp/$b.log"
		: >"$vlog"
		rm -f "$vlog.done"
		log "$b ($i/${#todo[@]}): go build"
		# Every 30 s, how far it is: -v names each package as it is compiled. The ticker ends
		# with the build, or on its own within a second when this script is gone (Ctrl-C; the
		# go build runs in the foreground, so that Ctrl-C reaches it).
		progress_ticker "$b ($i/${#todo[@]})" "$vlog" "$tb" $BASHPID &
		ticker=$!
		ok=1
		(cd "$SRC_DIR" && exec go build -v -trimpath -tags selinux,notest -ldflags "-s -w$ld" -o "$BIN_DIR.tmp/$b" "k8s.io/kubernetes/cmd/$b") 2>"$vlog" || ok=0
		touch "$vlog.done"
		wait "$ticker" || true
		if ((!ok)); then
			grep -v '^[[:alnum:]_./-]*$' "$vlog" >&2 || true
			die "building Kubernetes' $b failed (see above)"
		fi
		mv "$BIN_DIR.tmp/$b" "$BIN_DIR/$b"
		log "$b ($i/${#todo[@]}): built in $(since "$tb"), $(compiled "$vlog") packages compiled"
		rm -f "$vlog" "$vlog.done"
	done
	rmdir "$BIN_DIR.tmp" 2>/dev/null || true
	log "Kubernetes binaries built in $(since "$t0")"
}
