#!/usr/bin/env bash
# `make demo`: on the running local cluster, install the CRD, start the operator in the
# background, apply the examples, wait until they are Ready and show what Herd created.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state="$root/.cluster"
export KUBECONFIG="$state/kubeconfig"
bin=$(hack/build-tools.sh)
kubectl() { "$bin/kubectl" "$@"; }
log() { printf '[demo] %s\n' "$*" >&2; }

log "installing the WebService CRD"
kubectl apply --server-side --force-conflicts --field-manager herd-demo -f charts/herd/crds/ >/dev/null
# (`kubectl wait` fails outright while the new CRD has no conditions yet: poll instead.)
for _ in $(seq 120); do
  [ "$(kubectl get crd webservices.herd.dev \
      -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] && break
  sleep 0.5
done

pidfile="$state/pids/operator"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "operator already running (pid $(cat "$pidfile"))"
else
  log "starting the operator (logs: .cluster/logs/operator.log)"
  setsid .venv/bin/herd operator --standalone \
    --liveness http://127.0.0.1:18080/healthz --metrics-port 18090 --metrics-address 127.0.0.1 \
    >"$state/logs/operator.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  deadline=$((SECONDS + 60))
  until curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1; do
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$state/logs/operator.log" >&2; log "the operator exited"; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "the operator did not become live in 60 s"; exit 1; }
    sleep 0.5
  done
fi

log "applying manifests/examples/"
kubectl apply -f manifests/examples/
log "waiting for the WebServices to become Ready"
kubectl wait --for condition=Ready webservices --all --timeout 180s

echo
kubectl get webservices -o wide
echo
kubectl get deployments,services,ingresses,poddisruptionbudgets,pods \
  -l app.kubernetes.io/managed-by=herd
cat <<EOF

Herd is running on the local cluster (pods are simulated by kwok: no containers run).
  export KUBECONFIG=$KUBECONFIG
  $bin/kubectl describe webservice shop
  .venv/bin/herd tune --interface asgi --cpu 2 --memory 1Gi
Operator logs: .cluster/logs/operator.log
Stop everything: make demo-down
EOF
