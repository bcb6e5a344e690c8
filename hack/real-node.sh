# The real node beside the kwok nodes: containerd, kubelet and kube-proxy as processes, pods on a
# CNI bridge. Sourced by hack/cluster.sh, which defines start, wait_for, log, die, sign and the
# paths ($bin, $state, $pki, $logs, $pids, $kubeconfig).
#
# The host is left exactly as found: up saves what the node will change (sysctls, iptables,
# links) under $host_record, once per boot, and down removes every chain, link, mount and cgroup the node made
# and restores the sysctls. tests/integration/test_real_node.py compares before and after.

NODE_NAME=herd-node
# The pod sandbox, imported by hack/images.sh (never pulled): also the image of host stand-ins.
PAUSE_IMAGE=registry.k8s.io/pause:3.10
# The node's address sits on a bridge of its own (this kernel has no dummy links), so pods and
# the host reach it, and it disappears with the cluster.
NODE_LINK=herd0
NODE_IP=${HERD_NODE_IP:-10.87.0.1}
POD_BRIDGE=herd-cni0
POD_CIDR=${HERD_POD_CIDR:-10.87.1.0/24}
KUBELET_PORT=${HERD_KUBELET_PORT:-10250}
KUBELET_HEALTHZ_PORT=${HERD_KUBELET_HEALTHZ_PORT:-17248}
KUBE_PROXY_HEALTHZ_PORT=${HERD_KUBE_PROXY_HEALTHZ_PORT:-17256}
KUBE_PROXY_METRICS_PORT=${HERD_KUBE_PROXY_METRICS_PORT:-17249}
REAL_NODE_TAINT=herd.dev/real-node
containerd_dir="$state/containerd"
containerd_sock="$containerd_dir/containerd.sock"
# The host as it was before the first real node since boot. Host-wide, not in one cluster's
# state directory: a cluster whose processes were killed without `down` leaves its chains and
# links, and the next cluster must not take those for the host's own.
host_record=${HERD_HOST_RECORD:-/run/herd-node}
host_before="$host_record/host-before"

# Sysctls kubelet, kube-proxy or the bridge plugin write (kubelet sets the vm/kernel ones
# unless protectKernelDefaults, which instead refuses to start on a host that differs).
NODE_SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.ipv4.conf.all.route_localnet vm.overcommit_memory
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max)

real_node_enabled() { [ "${HERD_REAL_NODE:-1}" = 1 ]; }

# Iptables rules with the node's chains (KUBE-*, CNI-*) left out: what the host had.
host_iptables() {
  local tool=$1
  "$tool-save" | sed -E -e '/^#/d' -e '/^:(KUBE|CNI)-/d' -e '/^-A (KUBE|CNI)-/d' -e '/-j (KUBE|CNI)-/d' \
    -e 's/^(:[A-Z]+ [A-Z]+) \[[0-9]+:[0-9]+\]/\1 [0:0]/'
}

# host_state: what the node may change on the host, in a form to compare before and after.
host_state() {
  local tool s
  for tool in iptables ip6tables; do
    echo "## $tool"
    "$tool-save" | sed -E -e '/^#/d' -e 's/^(:[A-Z]+ [A-Z]+) \[[0-9]+:[0-9]+\]/\1 [0:0]/'
  done
  echo "## links"
  ip -br link | awk '{print $1, $3}'
  echo "## sysctls"
  for s in "${NODE_SYSCTLS[@]}"; do
    printf '%s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo absent)"
  done
  echo "## mounts under the state directory"
  awk -v p="$state/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo
  echo "## kubepods cgroups"
  ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true
}

node_alive_in() { local f; for f in "$1"/pids/{containerd,kubelet,kube-proxy}; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0; done; return 1; }

# save_host: record the host once per boot, and claim the node for this state directory. A
# previous owner whose node is gone had its leftovers recorded as the host's by nobody: this
# cluster's down removes them with its own.
save_host() {
  local boot owner
  boot=$(cat /proc/sys/kernel/random/boot_id)
  [ "$(cat "$host_record/boot_id" 2>/dev/null)" = "$boot" ] || rm -rf "$host_record"
  mkdir -p "$host_record"
  echo "$boot" >"$host_record/boot_id"
  owner=$(cat "$host_record/owner" 2>/dev/null || true)
  if [ -n "$owner" ] && [ "$owner" != "$state" ]; then
    node_alive_in "$owner" &&
      die "a real node of another Herd cluster runs on this host (state in $owner): bring that one down first"
    log "the real node of $owner was never brought down: this cluster's down removes what it left"
    echo "$owner" >>"$host_record/abandoned"
  fi
  echo "$state" >"$host_record/owner"
  [ -d "$host_before" ] && return 0
  ip link show "$NODE_LINK" >/dev/null 2>&1 &&
    die "the host has a real node's leftovers ($NODE_LINK) that no record in $host_record describes: remove them (ip link del $NODE_LINK; ip link del $POD_BRIDGE; the KUBE-* and CNI-* iptables chains) or reboot"
  mkdir -p "$host_before.tmp"
  host_state >"$host_before.tmp/state"
  sed -n '/^## sysctls/,/^## /{/^## /d;p}' "$host_before.tmp/state" >"$host_before.tmp/sysctls"
  mv "$host_before.tmp" "$host_before"
}

owns_node() { [ -d "$host_before" ] && [ "$(cat "$host_record/owner" 2>/dev/null)" = "$state" ]; }

# restore_iptables TOOL FAMILY: tables the node created go; in the others, only its chains.
restore_iptables() {
  local tool=$1 family=$2 table
  host_iptables "$tool" >"$state/$tool.rules"
  "$tool-restore" <"$state/$tool.rules"
  rm -f "$state/$tool.rules"
  for table in $("$tool-save" | sed -n 's/^\*//p'); do
    sed -n "/^## $tool\$/,/^## /p" "$host_before/state" | grep -qx "\*$table" ||
      nft delete table "$family" "$table"
  done
}

real_node_preflight() {
  local c
  for c in runc iptables ip6tables iptables-save nft conntrack /usr/lib/cni/bridge mount; do
    command -v "$c" >/dev/null || die "the real node needs $c: run hack/install-system-deps.sh (or HERD_REAL_NODE=0)"
  done
  [ "$(id -u)" = 0 ] || die "the real node needs root (or HERD_REAL_NODE=0 for kwok nodes only)"
  for c in "$NODE_IP" "${POD_CIDR%/*}"; do
    ip -o addr show | grep -v " $NODE_LINK \| $POD_BRIDGE " | grep -qF "inet ${c%.*}." &&
      die "${c%.*}.0/24 is already used on this host; set HERD_NODE_IP / HERD_POD_CIDR"
  done
  return 0
}

node_pki() {
  [ -f "$pki/kubelet.crt" ] && return 0
  sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  sign kube-proxy "/CN=system:kube-proxy"
}

write_containerd_config() {
  mkdir -p "$containerd_dir/certs.d/_default" "$containerd_dir/certs.d/127.0.0.1:$REGISTRY_PORT" "$state/cni/net.d"
  # Nothing is pulled from outside: every registry but the cluster's own on loopback resolves
  # to a closed loopback port, so a pod whose image was not imported fails at once with
  # ErrImagePull instead of reaching out.
  cat >"$containerd_dir/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:9"
EOF
  cat >"$containerd_dir/certs.d/127.0.0.1:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PORT"
[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
  cat >"$containerd_dir/config.toml" <<EOF
version = 3
root = "$containerd_dir/root"
state = "$containerd_dir/state"
[grpc]
  address = "$containerd_sock"
[ttrpc]
  address = "$containerd_sock.ttrpc"
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$PAUSE_IMAGE'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '$containerd_dir/certs.d'
[plugins.'io.containerd.cri.v1.runtime']
  disable_apparmor = true
  # This machine's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below
  # containerd's own and fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$state/cni/net.d'
EOF
  cat >"$state/cni/net.d/10-herd.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "herd",
  "plugins": [
    {"type": "bridge", "bridge": "$POD_BRIDGE", "isGateway": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$state/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$state/kubelet"
  cat >"$state/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
# cgroup v1 here (with a v2 hierarchy beside it); kubelet refuses v1 unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$containerd_sock
clusterDNS: [$NODE_IP]
clusterDomain: cluster.local
resolvConf: $state/kubelet/resolv.conf
registerWithTaints:
- {key: $REAL_NODE_TAINT, value: "true", effect: NoSchedule}
failSwapOn: false
rotateCertificates: false
serializeImagePulls: false
# Imported images (hack/images.sh) share image IDs with what skaffold pushes to the loopback
# registry; once kubelet has pulled an ID, its default policy re-verifies every other name of
# it by pulling, and a pull of an imported name can only fail here.
imagePullCredentialsVerificationPolicy: NeverVerify
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
maxPods: 60
EOF
  # Pods resolve cluster names only: the host's resolvers are not theirs to use.
  printf 'nameserver %s\n' "$NODE_IP" >"$state/kubelet/resolv.conf"
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
hostnameOverride: $NODE_NAME
# 0: leave the host's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
nodePortAddresses: [$NODE_IP/32]
EOF
}

containerd_ready() { "$bin/ctr" --address "$containerd_sock" version >/dev/null 2>&1; }

# Ready by a kubelet that answers now: a node object keeps a dead kubelet's Ready for 40 s.
real_node_ready() {
  curl -fsS "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null 2>&1 &&
  [ "$("$bin/kubectl" --kubeconfig "$kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

kube_proxy_synced() {
  iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -q 'default/kubernetes:https'
}

# place_on_real_node NAMESPACE...: every pod created there from now on lands on the real node,
# through the API server's PodNodeSelector and PodTolerationRestriction admission plugins.
place_on_real_node() {
  local ns
  for ns in "$@"; do
    "$bin/kubectl" --kubeconfig "$kubeconfig" create namespace "$ns" 2>/dev/null || true
    "$bin/kubectl" --kubeconfig "$kubeconfig" annotate namespace "$ns" --overwrite \
      "scheduler.alpha.kubernetes.io/node-selector=$REAL_NODE_TAINT=true" \
      "scheduler.alpha.kubernetes.io/defaultTolerations=[{\"key\":\"$REAL_NODE_TAINT\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]" >/dev/null
  done
}

up_real_node() {
  local started=$SECONDS
  # Built first, so that what a build might leave on the host counts as the host's.
  "$root/hack/images.sh" build >/dev/null
  started=$SECONDS
  save_host
  node_pki
  write_kubeconfig "$state/kubelet.kubeconfig" kubelet
  write_kubeconfig "$state/kube-proxy.kubeconfig" kube-proxy
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    ip link add "$NODE_LINK" type bridge
    ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  fi
  ip link set "$NODE_LINK" up
  write_containerd_config
  write_kubelet_config
  # containerd finds its shim next to itself.
  start containerd env PATH="$bin:$PATH" "$bin/containerd" --config "$containerd_dir/config.toml"
  wait_for 30 "containerd answering on $containerd_sock" containerd_ready
  # Before kubelet starts: a missing pause image would make it try a registry.
  HERD_CONTAINERD_SOCKET=$containerd_sock CTR="$bin/ctr" "$root/hack/images.sh" import >&2
  start kubelet "$bin/kubelet" --config "$state/kubelet/config.yaml" \
    --kubeconfig "$state/kubelet.kubeconfig" --root-dir "$state/kubelet/root" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "$REAL_NODE_TAINT=true" --v 1
  start kube-proxy "$bin/kube-proxy" --config "$state/kube-proxy.yaml"
  wait_for 60 "node $NODE_NAME becoming Ready" real_node_ready
  wait_for 30 "kube-proxy writing the Service rules" kube_proxy_synced
  # Where the demo, `helm install` and `skaffold run -p local` put their pods.
  place_on_real_node default herd-system
  log "real node $NODE_NAME Ready in $((SECONDS - started)) s; namespaces default and herd-system place their pods on it"
}

# down_real_node: after kubelet and kube-proxy have stopped. Kills what containerd runs, then
# removes what the node added to the host.
down_real_node() {
  owns_node || return 0
  local pid task cg m s dir
  if [ -f "$pids/containerd" ] && containerd_ready; then
    for task in $("$bin/ctr" --address "$containerd_sock" -n k8s.io tasks ls -q 2>/dev/null); do
      "$bin/ctr" --address "$containerd_sock" -n k8s.io tasks kill -s SIGKILL "$task" 2>/dev/null || true
    done
  fi
  [ ! -f "$pids/containerd" ] || stop_groups "$pids/containerd"
  # Shims outlive containerd by design; ours name our socket on their command line.
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $containerd_sock" 2>/dev/null || true
  for cg in /sys/fs/cgroup/*/kubepods; do
    [ -d "$cg" ] || continue
    for pid in $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  # Mounts under the state directories (volumes, rootfs, netns), deepest first.
  for dir in "$state" $(cat "$host_record/abandoned" 2>/dev/null); do
    for m in $(awk -v p="$dir/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  for cg in /sys/fs/cgroup/*/kubepods; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # Veths die with their network namespaces; the bridges and the node's link go here.
  ip link del "$POD_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_LINK" 2>/dev/null || true
  restore_iptables iptables ip
  restore_iptables ip6tables ip6
  while IFS='=' read -r s m; do
    [ "$m" = absent ] || sysctl -q -w "$s=$m" >/dev/null 2>&1 || log "could not restore $s=$m"
  done <"$host_before/sysctls"
  rm -rf "$host_record" "$containerd_dir/state" "$state/kubelet/root" "$state/cni/ipam"
}
