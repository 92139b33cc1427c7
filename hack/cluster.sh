#!/usr/bin/env bash
# hack/cluster.sh — a real single-node Kubernetes on this machine, for hotpod's e2e tests and demo.
#
#   hack/cluster.sh up       build what is missing (first time: Kubernetes, CPU-bound, see README), start the cluster + registry
#   hack/cluster.sh down     stop exactly what up started and remove everything it made
#   hack/cluster.sh status   say what runs
#   hack/cluster.sh env      print `export KUBECONFIG=...`
#   hack/cluster.sh build    only build (Kubernetes from the Go module proxy, helpers, pause image)
#   hack/cluster.sh restart COMPONENT   stop one component of a running cluster, start it again as up
#                            does, wait until it is healthy (fault tests; one at a time)
#
# The components run as plain host processes: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet (containerd CRI + runc, cgroupfs), kube-proxy, CNI bridge networking, and
# a plain-HTTP registry on 127.0.0.1:5000. Nothing is pulled from any container registry: the pause
# and base images are built here. Traffic stays on loopback and the cluster's own bridge.
# Binaries are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/hotpod/cluster/v<version>; state (certs,
# etcd, containerd, logs, pids) in .../hotpod/cluster/state, removed by down. Must run as root.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$HACK_DIR")"
K8S_VERSION="${K8S_VERSION:-1.33.13}" # 1.32 cannot be built from the module proxy (staging modules refused)
CACHE="${HOTPOD_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hotpod/cluster}"
BIN_DIR="$CACHE/v$K8S_VERSION/bin"
SRC_DIR="$CACHE/v$K8S_VERSION/src"
TOOLS="$CACHE/tools"
STATE="$CACHE/state"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
PKI="$STATE/pki"
KUBECONFIG_FILE="$STATE/admin.kubeconfig"
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
COMPONENTS=(registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
BRIDGE=hotpod0
REGISTRY=127.0.0.1:5000
CTR_SOCK="$STATE/containerd/containerd.sock"
PAUSE_IMAGE=localhost/hotpod/pause:3.10
NODE_NAME="$(hostname | tr '[:upper:]' '[:lower:]')"
EGRESS_CHAIN=HOTPOD-EGRESS

export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for SECONDS WHAT CMD... — poll CMD every 0.2 s
wait_for() {
	local end=$((SECONDS + $1)) what="$2"
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || { log "timed out waiting for $what"; return 1; }
		sleep 0.2
	done
}

apt_need() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]} (apt)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || true
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ------------------------------------------------------------------------------------ build
source "$HACK_DIR/cluster-build.sh"

build_all() {
	command -v go >/dev/null || die "Go not found: install Go 1.24 or newer"
	(
		export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
		k8s_build
	)
	# helpers, from this repository (the project's own module and caches)
	local stamp
	stamp=$(cd "$REPO_DIR" && cat go.mod go.sum hack/clustertool/*.go hack/pause/*.go | sha256sum | cut -c1-16)
	if [[ "$(cat "$TOOLS/.stamp" 2>/dev/null)" != "$stamp" ]]; then
		log "building cluster helpers"
		mkdir -p "$TOOLS"
		(cd "$REPO_DIR" && go build -trimpath -ldflags '-s -w' -o "$TOOLS/" ./hack/clustertool ./hack/pause) ||
			die "building hack/clustertool failed"
		"$TOOLS/clustertool" pause-image -binary "$TOOLS/pause" -tag "$PAUSE_IMAGE" -out "$TOOLS/pause.tar"
		echo "$stamp" >"$TOOLS/.stamp"
	fi
}

# ------------------------------------------------------------------------------------ up
alive() { # NAME: the recorded process runs and is not a zombie
	local f="$PIDS/$1.pid" pid
	[[ -f "$f" ]] || return 1
	pid=$(cat "$f")
	[[ -r /proc/$pid/stat ]] && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]
}

start() { # NAME CMD...: a background process in its own session; pid and log recorded
	# It keeps none of the caller's descriptors past stdin/out/err: a lock the caller holds
	# (flock) or a test's pipe would otherwise stay open as long as the daemon runs.
	local name="$1"
	shift
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec $fd>&-"; fi
		done 2>/dev/null
		exec setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null
	) &
	echo $! >"$PIDS/$name.pid"
}

node_ip() { ip -4 route get 1.1.1.1 2>/dev/null | awk '{for(i=1;i<=NF;i++) if($i=="src"){print $(i+1); exit}}'; }

# launch NAME: start one component the one way both up and restart start it (up writes the
# config files and certificates first; restart reuses them)
launch() {
	local P="$PKI" cfg="$STATE/config" ip
	case "$1" in
	registry) start registry "$TOOLS/clustertool" registry -addr "$REGISTRY" -dir "$STATE/registry" ;;
	containerd) start containerd containerd --config "$cfg/containerd.toml" ;;
	etcd)
		# --initial-cluster-state is ignored once the data dir exists (a restart)
		start etcd etcd --name hotpod --data-dir "$STATE/etcd" \
			--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
			--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
			--initial-cluster hotpod=http://127.0.0.1:2380 --initial-cluster-state new \
			--quota-backend-bytes 2147483648 --logger zap --log-level warn
		;;
	kube-apiserver)
		ip=$(node_ip)
		start kube-apiserver "$BIN_DIR/kube-apiserver" \
			--etcd-servers=http://127.0.0.1:2379 --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$ip" \
			--tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
			--service-account-issuer=https://kubernetes.default.svc.cluster.local \
			--service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
			--service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
			--enable-admission-plugins=NodeRestriction --allow-privileged=true \
			--kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
			--kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
			--requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
			--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
			--requestheader-extra-headers-prefix=X-Remote-Extra- \
			--proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
			--profiling=false --v=1
		;;
	kube-controller-manager)
		local kcm="$P/kube-controller-manager.kubeconfig"
		start kube-controller-manager "$BIN_DIR/kube-controller-manager" --kubeconfig="$kcm" \
			--authentication-kubeconfig="$kcm" --authorization-kubeconfig="$kcm" --bind-address=127.0.0.1 \
			--leader-elect=false --cluster-name=hotpod --cluster-signing-cert-file="$P/ca.crt" \
			--cluster-signing-key-file="$P/ca.key" --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
			--use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
			--allocate-node-cidrs=false --profiling=false --v=1
		;;
	kube-scheduler)
		local ks="$P/kube-scheduler.kubeconfig"
		start kube-scheduler "$BIN_DIR/kube-scheduler" --kubeconfig="$ks" --authentication-kubeconfig="$ks" \
			--authorization-kubeconfig="$ks" --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
		;;
	kubelet)
		ip=$(node_ip)
		start kubelet "$BIN_DIR/kubelet" --config="$cfg/kubelet.yaml" --kubeconfig="$P/kubelet.kubeconfig" \
			--root-dir="$STATE/kubelet" --hostname-override="$NODE_NAME" --node-ip="$ip" --v=1
		;;
	kube-proxy) start kube-proxy "$BIN_DIR/kube-proxy" --config="$cfg/kube-proxy.yaml" --v=1 ;;
	*) die "unknown component '$1': one of ${COMPONENTS[*]}" ;;
	esac
}

cmd_up() {
	[[ $EUID -eq 0 ]] || die "must run as root (it starts containerd and the kubelet)"
	local running=0 c
	for c in "${COMPONENTS[@]}"; do alive "$c" && running=$((running + 1)); done
	if ((running == ${#COMPONENTS[@]})) && kc get --raw /readyz >/dev/null 2>&1; then
		log "cluster already up"
		echo "export KUBECONFIG=$KUBECONFIG_FILE"
		return 0
	fi
	if ((running > 0)) || [[ -d "$STATE" ]]; then
		log "found a half-started or crashed cluster: cleaning it up first"
		cmd_down
	fi
	apt_need containerd runc containernetworking-plugins iptables conntrack iproute2 etcd-server curl ca-certificates tzdata busybox-static tini
	build_all
	local t0=$SECONDS ip
	ip=$(node_ip)
	[[ -n "$ip" ]] || die "cannot find the node IP (no default route): the apiserver needs a non-loopback address"
	for port in 6443 2379 2380 5000 10250 10256 10257 10259; do
		if ss -Hltn "sport = :$port" | grep -q .; then die "port $port is in use: $(ss -Hltnp "sport = :$port" | head -1)"; fi
	done
	mkdir -p "$PIDS" "$LOGS" "$PKI" "$STATE"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs,registry,config}
	local cfg="$STATE/config"

	# host settings, restored by down
	{
		echo "net.ipv4.ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
		echo "net.bridge.bridge-nf-call-iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 1)"
	} >"$STATE/sysctl.saved"
	sysctl -qw net.ipv4.ip_forward=1
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || log "warning: no br_netfilter sysctl"

	# The bridge exists before CNI (which adopts it) so the service CIDR can be routed onto it:
	# service traffic kube-proxy has not NATed dies on the bridge instead of leaving through eth0.
	# Pods may reach only the bridge and the host.
	ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
	ip addr replace "${POD_CIDR%.*}.1/${POD_CIDR#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
	iptables -N "$EGRESS_CHAIN" 2>/dev/null || iptables -F "$EGRESS_CHAIN"
	iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -o "$BRIDGE" -j RETURN
	iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -j DROP
	iptables -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$EGRESS_CHAIN"

	"$TOOLS/clustertool" certs -dir "$PKI" -node-name "$NODE_NAME" -node-ip "$ip" -service-ip "$KUBERNETES_SVC_IP"
	cp "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"

	launch registry

	mkdir -p "$STATE/containerd/certs.d/$REGISTRY"
	printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REGISTRY" "$REGISTRY" \
		>"$STATE/containerd/certs.d/$REGISTRY/hosts.toml"
	cat >"$cfg/containerd.toml" <<-TOML
	version = 2
	root = "$STATE/containerd/root"
	state = "$STATE/containerd/state"
	disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
	[grpc]
	  address = "$CTR_SOCK"
	[ttrpc]
	  address = "$CTR_SOCK.ttrpc"
	[plugins."io.containerd.internal.v1.opt"]
	  path = "$STATE/containerd/opt"
	[plugins."io.containerd.grpc.v1.cri"]
	  sandbox_image = "$PAUSE_IMAGE"
	  stream_server_address = "127.0.0.1"
	  stream_server_port = "0"
	  netns_mounts_under_state_dir = true
	  # This VM lacks CAP_SYS_RESOURCE: the negative oom_score_adj kubelet asks for sandboxes makes
	  # runc init fail ("can't get final child's PID from pipe: EOF"). Clamp it.
	  restrict_oom_score_adj = true
	  [plugins."io.containerd.grpc.v1.cri".containerd]
	    snapshotter = "overlayfs"
	    default_runtime_name = "runc"
	    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
	      runtime_type = "io.containerd.runc.v2"
	      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
	        BinaryName = "$(command -v runc)"
	        SystemdCgroup = false
	  [plugins."io.containerd.grpc.v1.cri".cni]
	    bin_dir = "/usr/lib/cni"
	    conf_dir = "$STATE/cni/net.d"
	  [plugins."io.containerd.grpc.v1.cri".registry]
	    config_path = "$STATE/containerd/certs.d"
	TOML
	cat >"$STATE/cni/net.d/10-hotpod.conflist" <<-JSON
	{"cniVersion": "1.0.0", "name": "hotpod", "plugins": [
	  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
	   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
	  {"type": "portmap", "capabilities": {"portMappings": true}}]}
	JSON
	launch containerd

	launch etcd

	wait_for 30 "containerd" ctr -a "$CTR_SOCK" version || die "containerd did not start: $(tail -5 "$LOGS/containerd.log")"
	ctr -a "$CTR_SOCK" -n k8s.io images import "$TOOLS/pause.tar" >/dev/null || die "importing the pause image failed"
	wait_for 30 "etcd" curl -fsS http://127.0.0.1:2379/health || die "etcd did not start: $(tail -5 "$LOGS/etcd.log")"

	local P="$PKI"
	launch kube-apiserver
	wait_for 90 "kube-apiserver" kc get --raw /readyz || die "apiserver not ready: $(tail -20 "$LOGS/kube-apiserver.log")"

	launch kube-controller-manager
	launch kube-scheduler

	cat >"$cfg/kubelet.yaml" <<-YAML
	apiVersion: kubelet.config.k8s.io/v1beta1
	kind: KubeletConfiguration
	address: 0.0.0.0
	authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$P/ca.crt"}}
	authorization: {mode: Webhook}
	tlsCertFile: "$P/kubelet.crt"
	tlsPrivateKeyFile: "$P/kubelet.key"
	cgroupDriver: cgroupfs
	failCgroupV1: false
	failSwapOn: false
	containerRuntimeEndpoint: "unix://$CTR_SOCK"
	podLogsDir: "$STATE/pod-logs"
	clusterDomain: cluster.local
	resolvConf: /etc/resolv.conf
	serializeImagePulls: false
	# The disk reports more capacity than used+free: threshold image GC would delete the locally
	# built pause image, after which no pod starts.
	imageGCHighThresholdPercent: 100
	imageGCLowThresholdPercent: 99
	evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
	# no CAP_SYS_RESOURCE: no negative oom_score_adj, no RLIMIT_NOFILE above the hard limit
	oomScoreAdj: 0
	maxOpenFiles: $(ulimit -Hn)
	YAML
	launch kubelet

	cat >"$cfg/kube-proxy.yaml" <<-YAML
	apiVersion: kubeproxy.config.k8s.io/v1alpha1
	kind: KubeProxyConfiguration
	clientConnection: {kubeconfig: "$P/kube-proxy.kubeconfig"}
	mode: iptables
	clusterCIDR: "$POD_CIDR"
	hostnameOverride: "$NODE_NAME"
	bindAddress: 127.0.0.1
	healthzBindAddress: 127.0.0.1:10256
	metricsBindAddress: 127.0.0.1:10249
	conntrack: {maxPerCore: 0}
	iptables: {localhostNodePorts: false}
	oomScoreAdj: 0
	YAML
	launch kube-proxy

	wait_for 60 "registry" curl -fsS "http://$REGISTRY/v2/" || die "registry did not start: $(tail -5 "$LOGS/registry.log")"
	"$TOOLS/clustertool" bases -registry "$REGISTRY" >"$STATE/bases.txt" || die "pushing the base images failed"
	wait_for 60 "node registration" kc get node "$NODE_NAME" || die "node never registered: $(tail -20 "$LOGS/kubelet.log")"
	kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null || die "node not Ready: $(tail -20 "$LOGS/kubelet.log")"
	wait_for 60 "the default ServiceAccount" kc get serviceaccount default -n default || die "no default ServiceAccount"
	log "cluster up in $((SECONDS - t0))s: node $NODE_NAME Ready, registry on $REGISTRY"
	echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

# ------------------------------------------------------------------------------------ down
stop_component() { # NAME [TIMEOUT]: TERM, wait, KILL; only if the pid still runs that program
	local name="$1" timeout="${2:-15}" f="$PIDS/$1.pid" pid argv0 exe
	[[ -f "$f" ]] || return 0
	pid=$(cat "$f")
	if alive "$name"; then
		argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -1)
		exe="$name"
		[[ "$name" == registry ]] && exe=clustertool
		if [[ "$(basename "$argv0")" == "$exe" ]]; then
			kill -TERM "$pid" 2>/dev/null
			local end=$((SECONDS + timeout))
			while alive "$name" && ((SECONDS < end)); do sleep 0.1; done
			alive "$name" && kill -KILL "$pid" 2>/dev/null
		else
			log "pid $pid now runs '$argv0', not $name: left alone"
		fi
	fi
	rm -f "$f"
}

# Best effort throughout: every step runs even when an earlier one found nothing to do.
cmd_down() (
	set +e +o pipefail
	[[ $EUID -eq 0 ]] || die "must run as root"
	local t0=$SECONDS
	# node agents first, so nothing restarts pods while they are torn down
	stop_component kube-proxy
	stop_component kubelet 30
	[[ -x "$BIN_DIR/kube-proxy" && -d "$STATE" ]] && "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1 || true
	# containers: kill their tasks through containerd while it runs (the shims then exit)
	if alive containerd && [[ -S "$CTR_SOCK" ]]; then
		local c
		for c in $(ctr -a "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a "$CTR_SOCK" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
		done
		sleep 0.5
		for c in $(ctr -a "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a "$CTR_SOCK" -n k8s.io tasks rm -f "$c" >/dev/null 2>&1 || true
		done
	fi
	for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_component "$c"; done
	stop_component containerd 20
	stop_component registry
	# whatever is left of ours: shims of our containerd, processes in the kubelet's pod cgroups
	local p
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $CTR_SOCK "; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
	local cg
	for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
		[[ -d "$cg" ]] || continue
		find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r p; do
			[[ -n "$p" ]] && kill -KILL "$p" 2>/dev/null || true
		done
	done
	sleep 0.2
	for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
		[[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
	# mounts under the state dir (volumes, netns, rootfs, shm), deepest first; a netns unmounted
	# takes its veth with it
	if [[ -d "$STATE" ]]; then
		awk -v d="$STATE/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
	fi
	ip link del "$BRIDGE" 2>/dev/null || true
	purge_chains iptables
	purge_chains ip6tables
	if [[ -f "$STATE/sysctl.saved" ]]; then
		while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done <"$STATE/sysctl.saved"
	fi
	# fixed host paths kubelet, CNI and runc use whatever their root dir: ours go, the rest stays
	for l in /var/log/containers/*.log; do
		[[ -L "$l" && "$(readlink "$l")" == "$STATE/"* ]] && rm -f "$l"
	done
	rm -f /var/lib/kubelet/device-plugins/kubelet.sock
	rm -rf /run/containerd/runc/k8s.io
	for d in /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni /var/log/containers /run/containerd/runc /run/containerd; do
		rmdir "$d" 2>/dev/null || true
	done
	rm -rf "$STATE" 2>/dev/null || log "could not remove all of $STATE"
	log "down in $((SECONDS - t0))s"
)

# purge_chains iptables|ip6tables: the KUBE-* (kubelet, kube-proxy), CNI-* (portmap) and our own
# chains, and the jumps into them
purge_chains() {
	local ipt="$1" tbl rule ch
	for tbl in filter nat mangle raw; do
		"$ipt" -t "$tbl" -S 2>/dev/null | grep -E "^-A [A-Z]+ .*-j (KUBE-|CNI-|$EGRESS_CHAIN)" | grep -vE "^-A (KUBE-|CNI-|$EGRESS_CHAIN)" |
			sed 's/^-A/-D/' | while read -r rule; do eval "$ipt" -t "$tbl" "$rule" 2>/dev/null || true; done
		for ch in $("$ipt" -t "$tbl" -S 2>/dev/null | awk -v e="$EGRESS_CHAIN" '$1=="-N" && ($2 ~ /^(KUBE|CNI)-/ || $2==e) {print $2}'); do
			"$ipt" -t "$tbl" -F "$ch" 2>/dev/null || true
		done
		for ch in $("$ipt" -t "$tbl" -S 2>/dev/null | awk -v e="$EGRESS_CHAIN" '$1=="-N" && ($2 ~ /^(KUBE|CNI)-/ || $2==e) {print $2}'); do
			"$ipt" -t "$tbl" -X "$ch" 2>/dev/null || true
		done
	done
}

# ------------------------------------------------------------------------------------ restart
# healthy NAME: what up waits for before it goes on, per component
healthy() {
	case "$1" in
	registry) curl -fsS "http://$REGISTRY/v2/" ;;
	containerd) ctr -a "$CTR_SOCK" version ;;
	etcd) curl -fsS http://127.0.0.1:2379/health ;;
	kube-apiserver) kc get --raw /readyz ;;
	kube-controller-manager) curl -fsSk https://127.0.0.1:10257/healthz ;;
	kube-scheduler) curl -fsSk https://127.0.0.1:10259/healthz ;;
	kubelet) [[ "$(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" == True ]] ;;
	kube-proxy) curl -fsS http://127.0.0.1:10256/healthz ;;
	esac
}

heartbeat() { kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}'; }
heartbeat_after() { local now; now=$(heartbeat) && [[ -n "$now" && "$now" != "$1" ]]; }

# cmd_restart NAME: stop one component of a running cluster and start it again the way up does,
# then wait until it is healthy. For fault tests; the cluster is shared, so one at a time.
cmd_restart() {
	[[ $EUID -eq 0 ]] || die "must run as root"
	local name="${1:-}" c ok=
	for c in "${COMPONENTS[@]}"; do [[ "$c" == "$name" ]] && ok=1; done
	[[ -n "$ok" ]] || die "restart what? one of: ${COMPONENTS[*]}"
	alive "$name" || die "$name is not running: see '$0 status'"
	local t0=$SECONDS
	stop_component "$name" 30
	# A stopped kubelet still counts as Ready until its lease runs out: wait for the new one to
	# post its own status (a new heartbeat), not for the stale condition.
	local before=
	[[ "$name" == kubelet ]] && before=$(heartbeat || true)
	launch "$name"
	[[ "$name" == kubelet ]] && { wait_for 120 "a kubelet heartbeat" heartbeat_after "$before" || die "kubelet did not report after restart: $(tail -20 "$LOGS/kubelet.log")"; }
	wait_for 120 "$name" healthy "$name" || die "$name not healthy after restart: $(tail -20 "$LOGS/$name.log")"
	log "$name restarted in $((SECONDS - t0))s"
}

cmd_status() {
	local c n=0
	for c in "${COMPONENTS[@]}"; do
		if alive "$c"; then
			printf '%-24s running (pid %s)\n' "$c" "$(cat "$PIDS/$c.pid")"
			n=$((n + 1))
		else
			printf '%-24s stopped\n' "$c"
		fi
	done
	if ((n == ${#COMPONENTS[@]})) && kc get --raw /readyz >/dev/null 2>&1; then
		echo "cluster: up (export KUBECONFIG=$KUBECONFIG_FILE)"
	elif ((n == 0)); then
		echo "cluster: down"
		return 3
	else
		echo "cluster: partly running: run '$0 down' then '$0 up'"
		return 1
	fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
build) build_all ;;
restart) cmd_restart "${2:-}" ;;
*)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
