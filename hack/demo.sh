#!/usr/bin/env bash
# `make demo`: on the running local cluster, install the CRD, start the operator in the
# background, apply the examples, wait until they are Ready and show what Herd created. With
# the real node (the default) the examples run there, answer through Traefik, and a bounded
# background load gives the canary analysis real data.
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

real_node=false
[ -f "$state/ingress-url" ] && real_node=true
if $real_node; then
  # cluster-up placed the default namespace's pods on the real node.
  HERD_PROMETHEUS_URL=$(cat "$state/prometheus-url") hack/operator.sh start
else
  hack/operator.sh start
fi

log "applying manifests/examples/"
kubectl apply -f manifests/examples/
log "waiting for the WebServices to become Ready"
kubectl wait --for condition=Ready webservices --all --timeout 180s

echo
kubectl get webservices -o wide
echo
kubectl get deployments,services,ingresses,poddisruptionbudgets \
  -l app.kubernetes.io/managed-by=herd
echo
kubectl get pods -o wide -l app.kubernetes.io/managed-by=herd

if ! $real_node; then
  cat <<EOF

Herd is running on the local cluster (HERD_REAL_NODE=0: kwok simulates the pods, no container
runs, so every canary analysis is inconclusive and you promote by hand).
  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH
  kubectl describe webservice shop
Operator logs: .cluster/logs/operator.log
Stop everything: make demo-down
EOF
  exit 0
fi

ingress=$(cat "$state/ingress-url")
echo
for host in shop.localtest.me catalog.localtest.me; do
  # Traefik serves a new Ingress a moment after its endpoints are ready.
  for _ in $(seq 60); do
    curl -fsS -H "Host: $host" "$ingress/" >/dev/null 2>&1 && break
    sleep 0.5
  done
  echo "\$ curl -H 'Host: $host' $ingress/"
  curl -fsS -H "Host: $host" "$ingress/"
  echo
done

# A bounded load (20 minutes at most, 12 requests/s to shop, 4 to catalog) so that the canary
# analysis has real data; cluster-down stops it with the cluster.
load_pid="$state/pids/demo-load"
if ! { [ -f "$load_pid" ] && kill -0 "$(cat "$load_pid")" 2>/dev/null; }; then
  setsid bash -c "hey -z 20m -q 6 -c 2 -host shop.localtest.me '$ingress/' &
    hey -z 20m -q 2 -c 2 -host catalog.localtest.me '$ingress/' & wait" \
    >"$state/logs/demo-load.log" 2>&1 </dev/null &
  echo $! >"$load_pid"
fi

cat <<EOF

Herd is running the examples on the local cluster's real node, behind Traefik, with a light
load (12 requests/s to shop) for the next 20 minutes.
  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH
  curl -H 'Host: shop.localtest.me' $ingress/
  kubectl describe webservice shop
  kubectl logs deploy/shop
Prometheus: $(cat "$state/prometheus-url")
  sum by (herd_dev_track) (rate(http_requests_total{app_kubernetes_io_instance="shop"}[1m]))

Roll out shop 0.2.0 as a canary (docs/canary.md): 20 % of the requests, a pause for you, 50 %,
then 60 s in which the analysis of the canary's scraped error rate and p99 must pass.
  kubectl patch webservice shop --type merge -p '{"spec":{"image":"ghcr.io/herd-dev/example-flask:0.2.0"}}'
  .venv/bin/herd status shop --wait Paused --timeout 2m    # 20 % on the canary, waiting for you
  .venv/bin/herd promote shop                             # on to 50 %, analysed every 10 s
  .venv/bin/herd status shop --wait Succeeded --timeout 3m
  .venv/bin/herd list
Watch it in the browser (docs/dashboard.md), then open http://127.0.0.1:8080/:
  .venv/bin/herd dashboard --namespace default
Operator logs: .cluster/logs/operator.log
Stop everything: make demo-down
EOF
