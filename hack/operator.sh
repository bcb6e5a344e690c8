#!/usr/bin/env bash
# The Herd operator as a process on this machine, against the local cluster: kwok simulates
# pods, so nothing runs inside the operator's own pod after `helm install`.
#
#   hack/operator.sh start                    # as the cluster admin (what `make demo` does)
#   hack/operator.sh start --as herd-system/herd
#                                             # as the chart's ServiceAccount: exactly the
#                                             # permissions `helm install` granted
#   hack/operator.sh stop
#
# Logs: .cluster/logs/operator.log. `make demo-down` (hack/cluster.sh down) stops it too.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.cluster"
pidfile="$state/pids/operator"
log_file="$state/logs/operator.log"
log() { printf '[operator] %s\n' "$*" >&2; }
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# A kubeconfig that authenticates as NAMESPACE/ACCOUNT with a fresh token.
service_account_kubeconfig() {
  local namespace=${1%/*} account=${1#*/} config="$state/operator.kubeconfig" token
  token=$("$bin/kubectl" create token "$account" -n "$namespace" --duration 24h)
  cp "$state/kubeconfig" "$config"
  "$bin/kubectl" config --kubeconfig "$config" set-credentials "$account" --token "$token" >/dev/null
  "$bin/kubectl" config --kubeconfig "$config" set-context --current --user "$account" >/dev/null
  echo "$config"
}

start() {
  local kubeconfig="$state/kubeconfig"
  if [ "${1:-}" = --as ]; then
    [ -n "${2:-}" ] || { log "--as needs NAMESPACE/SERVICEACCOUNT"; exit 2; }
    kubeconfig=$(service_account_kubeconfig "$2")
    log "running as the ServiceAccount $2"
  fi
  if running; then
    log "already running (pid $(cat "$pidfile")); hack/operator.sh stop to restart it"
    return
  fi
  mkdir -p "$state/pids" "$state/logs"
  log "starting (logs: .cluster/logs/operator.log)"
  KUBECONFIG="$kubeconfig" setsid .venv/bin/herd operator --standalone \
    --liveness http://127.0.0.1:18080/healthz --metrics-port 18090 --metrics-address 127.0.0.1 \
    >"$log_file" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + 60))
  until curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1; do
    running || { tail -20 "$log_file" >&2; log "the operator exited"; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "the operator did not become live in 60 s"; exit 1; }
    sleep 0.5
  done
}

stop() {
  if running; then
    local pid deadline=$((SECONDS + 30))
    pid=$(cat "$pidfile")
    kill "$pid"
    # kopf takes a few seconds to shut down; its ports are free only once it has exited.
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped"
  fi
  rm -f "$pidfile"
}

bin=$(hack/build-tools.sh)
case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start [--as NAMESPACE/SERVICEACCOUNT] | stop" >&2; exit 2 ;;
esac
