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

hack/operator.sh start

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
  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH
  kubectl describe webservice shop
  .venv/bin/herd tune --interface asgi --cpu 2 --memory 1Gi

Try a canary rollout of shop (docs/canary.md). Simulated pods serve no traffic, so every
analysis is inconclusive: Herd pauses rather than promote on no data, and you promote by hand.
  kubectl patch webservice shop --type merge -p '{"spec":{"image":"ghcr.io/herd-dev/example-flask:0.2.0"}}'
  .venv/bin/herd status shop --wait Paused --timeout 2m    # 20 % on the canary, waiting for you
  .venv/bin/herd promote shop                             # on to 50 %
  .venv/bin/herd promote shop --full                      # skip the rest: promote now
  .venv/bin/herd status shop --wait Succeeded --timeout 2m
  .venv/bin/herd list
Operator logs: .cluster/logs/operator.log
Stop everything: make demo-down
EOF
