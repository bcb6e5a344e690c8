#!/usr/bin/env bash
# The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
# run as plain processes on loopback, with kwok simulating nodes and the pods' lifecycle; beside
# them a real node (containerd, kubelet, kube-proxy: hack/real-node.sh) and what a user's
# cluster has around Herd (CoreDNS, Traefik, Prometheus: hack/addons.sh). HERD_REAL_NODE=0
# starts the kwok nodes only.
#
#   hack/cluster.sh up      build the pinned binaries if needed, start (or reuse) the cluster
#   hack/cluster.sh down    stop every process started by `up`, free the ports, drop the data
#   hack/cluster.sh status  exit 0 when the cluster is running and healthy
#   hack/cluster.sh place NAMESPACE...
#                           put the pods of these namespaces on the real node
#
# State lives in .cluster/ at the repository root: kubeconfig, logs/, pids/, pki/, etcd data,
# and for the real node ingress-url and prometheus-url.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.cluster"
pki="$state/pki"
pids="$state/pids"
logs="$state/logs"
kubeconfig="$state/kubeconfig"

# Ports are fixed so a second `up` finds the running cluster, and below the ephemeral range
# (32768+) so an outgoing connection cannot hold one; override to run two side by side.
ETCD_CLIENT_PORT=${HERD_ETCD_CLIENT_PORT:-12379}
ETCD_PEER_PORT=${HERD_ETCD_PEER_PORT:-12380}
APISERVER_PORT=${HERD_APISERVER_PORT:-16443}
CONTROLLER_MANAGER_PORT=${HERD_CONTROLLER_MANAGER_PORT:-17257}
SCHEDULER_PORT=${HERD_SCHEDULER_PORT:-17259}
KWOK_PORT=${HERD_KWOK_PORT:-17247}
NODE_COUNT=${HERD_NODE_COUNT:-3}
# Room for bench/reconcile's 1200 WebServices (a real node's 110 pods would cap it at 330).
KWOK_NODE_SIZE='{cpu: "512", memory: 2Ti, pods: "1000"}'
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=real-node.sh
source "$root/hack/real-node.sh"
# shellcheck source=addons.sh
source "$root/hack/addons.sh"
if real_node_enabled; then
  COMPONENTS+=(containerd kubelet kube-proxy coredns traefik prometheus registry)
  API_ADVERTISE=$NODE_IP API_BIND=0.0.0.0
else
  API_ADVERTISE=127.0.0.1 API_BIND=127.0.0.1
fi

pid_alive() { [ -f "$pids/$1" ] && kill -0 "$(cat "$pids/$1")" 2>/dev/null; }

api_healthy() {
  [ -f "$kubeconfig" ] && "$bin/kubectl" --kubeconfig "$kubeconfig" --request-timeout=2s \
    get --raw /readyz >/dev/null 2>&1
}

running() {
  local c
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  api_healthy
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what did not happen within ${limit}s (logs: $logs)"
    sleep 0.5
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME COMMAND...: run a component detached from this shell, in its own process group.
start() {
  local name=$1; shift
  port_check_for "$name"
  setsid "$@" >"$logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$pids/$name"
}

port_check_for() {
  local p=""
  case $1 in
    etcd) p="$ETCD_CLIENT_PORT $ETCD_PEER_PORT" ;;
    kube-apiserver) p=$APISERVER_PORT ;;
    kube-controller-manager) p=$CONTROLLER_MANAGER_PORT ;;
    kube-scheduler) p=$SCHEDULER_PORT ;;
    kwok) p=$KWOK_PORT ;;
    kubelet) p="$KUBELET_PORT $KUBELET_HEALTHZ_PORT" ;;
    kube-proxy) p="$KUBE_PROXY_HEALTHZ_PORT $KUBE_PROXY_METRICS_PORT" ;;
    coredns) p=$COREDNS_HEALTH_PORT ;;
    traefik) p="$INGRESS_PORT $TRAEFIK_API_PORT $TRAEFIK_METRICS_PORT" ;;
    prometheus) p=$PROMETHEUS_PORT ;;
    registry) p=$REGISTRY_PORT ;;
  esac
  for port in $p; do
    port_free "$port" || die "port $port (for $1) is in use by another process; set HERD_*_PORT to move it"
  done
}

# sign NAME SUBJECT [SAN]: a key and a certificate signed by the local CA.
sign() {
  local ext
  ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n' >"$ext"
  if [ -n "${3:-}" ]; then
    printf 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$3" >>"$ext"
  else
    printf 'extendedKeyUsage=clientAuth\n' >>"$ext"
  fi
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$pki/$1.crt" 2>/dev/null
  rm -f "$ext" "$pki/$1.csr"
}

make_pki() {
  # The API server's certificate names the address pods reach it on: a new one, new PKI.
  if [ -f "$pki/admin.crt" ] && openssl x509 -in "$pki/apiserver.crt" -noout -ext subjectAltName 2>/dev/null |
      grep -q "IP Address:$API_ADVERTISE\b"; then
    return 0
  fi
  rm -rf "$pki"
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=herd-local-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  sign apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:$API_ADVERTISE,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sign admin "/O=system:masters/CN=herd-admin"
  sign controller-manager "/CN=system:kube-controller-manager"
  sign scheduler "/CN=system:kube-scheduler"
  sign kwok "/O=system:masters/CN=kwok"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER
write_kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: herd-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: herd-local
  context: {cluster: herd-local, user: $2}
current-context: herd-local
EOF
}

add_nodes() {
  local i manifest=""
  for i in $(seq 0 $((NODE_COUNT - 1))); do
    manifest+="---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    topology.kubernetes.io/zone: zone-$((i % 3))
status:
  allocatable: $KWOK_NODE_SIZE
  capacity: $KWOK_NODE_SIZE
"
  done
  printf '%s' "$manifest" | "$bin/kubectl" --kubeconfig "$kubeconfig" apply -f - >/dev/null
}

nodes_ready() {
  local ready
  ready=$("$bin/kubectl" --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready ' || true)
  [ "$ready" -ge "$NODE_COUNT" ]
}

default_sa_exists() {
  "$bin/kubectl" --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1
}

up() {
  bin=$("$root/hack/build-tools.sh")
  if running; then
    log "already running; kubeconfig: $kubeconfig"
    return 0
  fi
  down_processes
  real_node_enabled && real_node_preflight
  mkdir -p "$pids" "$logs"
  make_pki
  write_kubeconfig "$kubeconfig" admin
  write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$state/scheduler.kubeconfig" scheduler
  write_kubeconfig "$state/kwok.kubeconfig" kwok
  local started=$SECONDS

  start etcd "$bin/etcd" --name herd --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "herd=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn

  start_apiserver
  log "kube-apiserver ready after $((SECONDS - started)) s"

  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false \
    --cluster-name herd-local --controllers '*,-nodeipam' \
    --kube-api-qps 200 --kube-api-burst 400 --concurrent-deployment-syncs 10 \
    --concurrent-replicaset-syncs 10

  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false \
    --kube-api-qps 200 --kube-api-burst 400

  start kwok "$bin/kwok" --kubeconfig "$state/kwok.kubeconfig" --config "$bin/kwok-stages.yaml" \
    --node-lease-duration-seconds 40 \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.0/16 --node-ip 127.0.0.1 --server-address "127.0.0.1:$KWOK_PORT"

  add_nodes
  wait_for 60 "$NODE_COUNT kwok nodes becoming Ready" nodes_ready
  wait_for 60 "the default ServiceAccount appearing" default_sa_exists
  if real_node_enabled; then
    up_real_node
    up_addons
  fi
  log "cluster up in $((SECONDS - started)) s; export KUBECONFIG=$kubeconfig"
}

# stop_groups PIDFILE...: SIGTERM each process group, give them 15 s together, then SIGKILL
# what is left; returns once every group is gone, so its ports are free.
start_apiserver() {
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$API_BIND" --advertise-address "$API_ADVERTISE" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --enable-admission-plugins PodNodeSelector,PodTolerationRestriction \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --kubelet-client-certificate "$pki/admin.crt" --kubelet-client-key "$pki/admin.key" \
    --cert-dir "$state/apiserver-certs"
  wait_for 120 "kube-apiserver becoming ready" api_healthy
}

# restart-apiserver: stop the API server and start it again, as an upgrade or a crash would;
# everything else (etcd, controllers, nodes, clients' watches) rides it out.
restart_apiserver() {
  bin=$("$root/hack/build-tools.sh")
  running || die "the cluster is not running"
  local started=$SECONDS
  stop_groups "$pids/kube-apiserver"
  start_apiserver
  log "kube-apiserver restarted in $((SECONDS - started)) s"
}

stop_groups() {
  local f pid deadline=$((SECONDS + 15))
  for f in "$@"; do kill -TERM -- "-$(cat "$f")" 2>/dev/null || kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  for f in "$@"; do
    pid=$(cat "$f")
    while kill -0 -- "-$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    while kill -0 -- "-$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$f"
  done
}

down_processes() {
  # Every pidfile: the components, and anything else started against this cluster (the demo's
  # operator). Each process leads its own process group (setsid). containerd stops after
  # kubelet, with the node's clean-up; etcd goes last: an API server that loses etcd first
  # spends its whole shutdown timeout retrying.
  local f clients=()
  for f in "$pids"/*; do
    [ -f "$f" ] && [ "$(basename "$f")" != etcd ] && [ "$(basename "$f")" != containerd ] && clients+=("$f")
  done
  [ ${#clients[@]} -eq 0 ] || stop_groups "${clients[@]}"
  down_real_node
  [ ! -f "$pids/etcd" ] || stop_groups "$pids/etcd"
}

down() {
  bin=$("$root/hack/build-tools.sh" 2>/dev/null) || bin=/nonexistent
  down_processes
  rm -rf "$state/etcd" "$kubeconfig" "$state/ingress-url" "$state/prometheus-url" "$state/prometheus/data" "$state/registry/data"
  log "stopped"
}

status() {
  bin=$("$root/hack/build-tools.sh" 2>/dev/null)
  if running; then log "running; export KUBECONFIG=$kubeconfig"; else log "not running"; return 1; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-apiserver) restart_apiserver ;;
  # What the real node changes on the host, for a test to compare before up and after down.
  host-state) host_state ;;
  host-before) cat "$host_before/state" ;;
  # place NAMESPACE...: pods created there from now on run on the real node.
  place) shift; bin=$("$root/hack/build-tools.sh"); place_on_real_node "$@" ;;
  *) die "usage: $0 up|down|status|restart-apiserver|host-state|host-before|place NAMESPACE..." ;;
esac
