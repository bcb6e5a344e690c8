#!/usr/bin/env bash
# A kind cluster with the real data plane Herd expects: ingress-nginx (with its metrics) and
# Prometheus (scraping pods annotated prometheus.io/scrape, as Herd's pods are). Then:
#   skaffold dev -p kind
# Needs docker (or podman), kind, kubectl and helm 3 on PATH. Not runnable on the Herd CI
# machine (no container engine); see docs/getting-started.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# Chart versions, pinned: ingress-nginx is retired upstream (best-effort maintenance ended in
# March 2026), its last charts still install; Gateway API is Herd's forward path.
INGRESS_NGINX_CHART_VERSION=${INGRESS_NGINX_CHART_VERSION:-4.14.1}
PROMETHEUS_CHART_VERSION=${PROMETHEUS_CHART_VERSION:-27.52.0}

for tool in kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is required on PATH" >&2; exit 1; }
done

if ! kind get clusters | grep -qx herd; then
  kind create cluster --config "$root/manifests/kind/cluster.yaml" --wait 120s
fi
kubectl config use-context kind-herd

helm upgrade --install ingress-nginx ingress-nginx \
  --repo https://kubernetes.github.io/ingress-nginx --version "$INGRESS_NGINX_CHART_VERSION" \
  --namespace ingress-nginx --create-namespace \
  --set controller.hostPort.enabled=true \
  --set controller.service.type=NodePort \
  --set-string controller.nodeSelector.ingress-ready=true \
  --set 'controller.tolerations[0].key=node-role.kubernetes.io/control-plane' \
  --set 'controller.tolerations[0].operator=Exists' \
  --set 'controller.tolerations[0].effect=NoSchedule' \
  --set controller.metrics.enabled=true \
  --set-string controller.podAnnotations.prometheus\\.io/scrape=true \
  --set-string controller.podAnnotations.prometheus\\.io/port=10254 \
  --wait --timeout 5m

helm upgrade --install prometheus prometheus \
  --repo https://prometheus-community.github.io/helm-charts --version "$PROMETHEUS_CHART_VERSION" \
  --namespace monitoring --create-namespace \
  --set alertmanager.enabled=false \
  --set prometheus-pushgateway.enabled=false \
  --set prometheus-node-exporter.enabled=false \
  --set server.persistentVolume.enabled=false \
  --set server.global.scrape_interval=15s \
  --wait --timeout 5m

cat <<MSG
kind cluster "herd" is ready: ingress-nginx on ports 80/443, Prometheus at
http://prometheus-server.monitoring.svc (Herd's default --prometheus-url).
Next: skaffold dev -p kind     (then open http://shop.localtest.me/)
MSG
