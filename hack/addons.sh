# What a user's cluster has around Herd, run as host processes for the real node: CoreDNS for
# cluster names, Traefik as the ingress controller (its ingress-nginx provider and Gateway API),
# Prometheus discovering pods the way the prometheus chart's `kubernetes-pods` job does, and a
# registry on loopback for `skaffold -p local` (as kind users run one beside their cluster).
# Sourced by hack/cluster.sh after hack/real-node.sh.

INGRESS_PORT=${HERD_INGRESS_PORT:-18000}
TRAEFIK_API_PORT=${HERD_TRAEFIK_API_PORT:-18084}
TRAEFIK_METRICS_PORT=${HERD_TRAEFIK_METRICS_PORT:-18082}
PROMETHEUS_PORT=${HERD_PROMETHEUS_PORT:-19090}
COREDNS_HEALTH_PORT=${HERD_COREDNS_HEALTH_PORT:-18053}
REGISTRY_PORT=${HERD_REGISTRY_PORT:-15000}
# The Gateway that HTTPRoutes attach to (spec.route.httpRoute.gateway: {name: web, namespace: herd-gateway}).
GATEWAY_NAMESPACE=herd-gateway
GATEWAY_NAME=web

kubectl_admin() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

addons_pki() {
  [ -f "$pki/addons.crt" ] && return 0
  sign addons "/CN=system:herd-addons"
}

# One identity for CoreDNS, Prometheus and Traefik (a ServiceAccount: Traefik takes a token),
# allowed to read the cluster and write the status of what Traefik serves.
apply_addon_objects() {
  kubectl_admin apply --server-side --field-manager herd-cluster -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: herd-addons}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch]}
- apiGroups: [networking.k8s.io, gateway.networking.k8s.io]
  resources: [ingresses/status, gatewayclasses/status, gateways/status, httproutes/status,
              grpcroutes/status, tlsroutes/status, tcproutes/status, udproutes/status,
              referencegrants/status, backendtlspolicies/status]
  verbs: [update, patch]
- {apiGroups: [""], resources: [events], verbs: [create, patch]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: traefik, namespace: kube-system}
---
apiVersion: v1
kind: Secret
metadata:
  name: traefik-token
  namespace: kube-system
  annotations: {kubernetes.io/service-account.name: traefik}
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: herd-addons}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: herd-addons}
subjects:
- {kind: User, name: "system:herd-addons", apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: traefik, namespace: kube-system}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
# The chart's default prometheusURL (http://prometheus-server.monitoring.svc:80) reaches the
# host's Prometheus from pods, as it would reach the prometheus chart's server in a cluster.
apiVersion: v1
kind: Service
metadata: {name: prometheus-server, namespace: monitoring}
spec:
  ports: [{name: http, port: 80, targetPort: $PROMETHEUS_PORT}]
---
# Endpoints rather than an EndpointSlice, naming a pod: the API server's service proxy (herd
# dashboard reads Prometheus through it) resolves a Service by its Endpoints and proxies only to
# addresses of pods. The host's Prometheus is on the node's network, so a host-network pod on
# the real node stands for it. The controller manager mirrors them into the slice kube-proxy reads.
apiVersion: v1
kind: Pod
metadata: {name: prometheus-host, namespace: monitoring}
spec:
  nodeName: $NODE_NAME
  hostNetwork: true
  containers: [{name: pause, image: "$PAUSE_IMAGE", imagePullPolicy: Never}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: prometheus-server, namespace: monitoring}
subsets:
- addresses: [{ip: "$NODE_IP", targetRef: {kind: Pod, namespace: monitoring, name: prometheus-host}}]
  ports: [{name: http, port: $PROMETHEUS_PORT, protocol: TCP}]
EOF
  kubectl_admin apply --server-side --field-manager herd-cluster -f "$bin/gateway-api-standard-crds.yaml" >/dev/null
  kubectl_admin wait --for condition=Established --timeout 60s crd/gateways.gateway.networking.k8s.io >/dev/null
  kubectl_admin apply --server-side --field-manager herd-cluster -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: v1
kind: Namespace
metadata: {name: $GATEWAY_NAMESPACE}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: $GATEWAY_NAME, namespace: $GATEWAY_NAMESPACE}
spec:
  gatewayClassName: traefik
  listeners:
  - {name: http, protocol: HTTP, port: $INGRESS_PORT, allowedRoutes: {namespaces: {from: All}}}
EOF
}

traefik_token() {
  local token=""
  for _ in $(seq 60); do
    token=$(kubectl_admin -n kube-system get secret traefik-token -o jsonpath='{.data.token}' 2>/dev/null | base64 -d)
    [ -n "$token" ] && break
    sleep 0.5
  done
  [ -n "$token" ] || die "the token controller did not fill kube-system/traefik-token"
  printf '%s' "$token"
}

write_addon_configs() {
  local api="https://127.0.0.1:$APISERVER_PORT"
  write_kubeconfig "$state/addons.kubeconfig" addons
  mkdir -p "$state/coredns" "$state/traefik" "$state/prometheus" "$state/registry"
  cat >"$state/coredns/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $state/addons.kubeconfig herd-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
EOF
  # checkNewVersion and sendAnonymousUsage off: Traefik would otherwise call out to the internet.
  cat >"$state/traefik/traefik.yaml" <<EOF
global: {checkNewVersion: false, sendAnonymousUsage: false}
entryPoints:
  web: {address: "127.0.0.1:$INGRESS_PORT"}
  traefik: {address: "127.0.0.1:$TRAEFIK_API_PORT"}
  metrics: {address: "0.0.0.0:$TRAEFIK_METRICS_PORT"}
ping: {entryPoint: traefik}
metrics:
  prometheus: {entryPoint: metrics, addEntryPointsLabels: true, addRoutersLabels: true, addServicesLabels: true, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]}
log: {level: INFO}
accessLog: {filePath: "$logs/traefik-access.log"}
providers:
  kubernetesIngressNGINX:
    endpoint: "$api"
    token: "$(traefik_token)"
    certAuthFilePath: "$pki/ca.crt"
    ingressClass: nginx
    controllerClass: k8s.io/ingress-nginx
  kubernetesGateway:
    endpoint: "$api"
    token: "$(traefik_token)"
    certAuthFilePath: "$pki/ca.crt"
EOF
  chmod 600 "$state/traefik/traefik.yaml"
  cat >"$state/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $state/registry/data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$REGISTRY_PORT"}
EOF
  cat >"$state/prometheus/prometheus.yml" <<EOF
# 2 s: a canary analysis reads increase() over its intervalSeconds (5 s at least), which needs
# two samples inside that window.
global: {scrape_interval: 2s, evaluation_interval: 2s}
scrape_configs:
# As the prometheus chart's kubernetes-pods job: pods that ask to be scraped, their labels
# copied onto the series (app.kubernetes.io/instance -> app_kubernetes_io_instance).
- job_name: kubernetes-pods
  kubernetes_sd_configs:
  - role: pod
    api_server: $api
    tls_config: {ca_file: $pki/ca.crt, cert_file: $pki/addons.crt, key_file: $pki/addons.key}
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape], action: keep, regex: "true"}
  - {source_labels: [__meta_kubernetes_pod_phase], action: drop, regex: Pending|Succeeded|Failed}
  - {source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path], action: replace, target_label: __metrics_path__, regex: (.+)}
  - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
    action: replace
    regex: (.+);(\d+)
    replacement: \$1:\$2
    target_label: __address__
  - {action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}
  - {source_labels: [__meta_kubernetes_namespace], action: replace, target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_name], action: replace, target_label: pod}
- job_name: traefik
  static_configs: [{targets: ["127.0.0.1:$TRAEFIK_METRICS_PORT"]}]
EOF
}

coredns_ready() { curl -fsS "http://127.0.0.1:$COREDNS_HEALTH_PORT/health" >/dev/null 2>&1; }
traefik_ready() { curl -fsS "http://127.0.0.1:$TRAEFIK_API_PORT/ping" >/dev/null 2>&1; }
prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }
registry_ready() { curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/" >/dev/null 2>&1; }

up_addons() {
  local started=$SECONDS
  addons_pki
  apply_addon_objects
  write_addon_configs
  start coredns "$bin/coredns" -conf "$state/coredns/Corefile"
  start traefik "$bin/traefik" --configFile "$state/traefik/traefik.yaml"
  # 0.0.0.0: pods reach it through monitoring/prometheus-server (the node's address).
  start prometheus "$bin/prometheus" --config.file "$state/prometheus/prometheus.yml" \
    --web.listen-address "0.0.0.0:$PROMETHEUS_PORT" --storage.tsdb.path "$state/prometheus/data" \
    --storage.tsdb.retention.time 6h
  start registry "$bin/registry" serve "$state/registry/config.yml"
  wait_for 30 "CoreDNS answering its health check" coredns_ready
  wait_for 30 "Traefik answering its ping" traefik_ready
  wait_for 30 "Prometheus becoming ready" prometheus_ready
  wait_for 30 "the registry answering" registry_ready
  echo "http://127.0.0.1:$INGRESS_PORT" >"$state/ingress-url"
  echo "http://127.0.0.1:$PROMETHEUS_PORT" >"$state/prometheus-url"
  log "CoreDNS, Traefik ($(cat "$state/ingress-url")) and Prometheus ($(cat "$state/prometheus-url")) up in $((SECONDS - started)) s"
}
