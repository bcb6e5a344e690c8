#!/usr/bin/env bash
# Builds the pinned control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm) from the Go module proxy into a cache outside the
# repository, keyed by hack/versions.env. A second run with the same pins is a no-op.
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

key=$(sha256sum "$here/versions.env" | cut -c1-16)
cache_root=${HERD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-tools}
bin="$cache_root/$key/bin"
work="$cache_root/$key/src"
mkdir -p "$bin" "$work"

log() { printf '[build-tools] %s\n' "$*" >&2; }

# GOTOOLCHAIN stays "auto": an older local Go fetches the toolchain the pins need from the proxy.
export CGO_ENABLED=0 GOFLAGS=-trimpath

# new_module DIR: a throwaway main module whose only job is to pin what it builds.
new_module() {
  rm -rf "$1" && mkdir -p "$1" && cd "$1"
  go mod init herd.local/build >/dev/null 2>&1
}

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  log "kubernetes $KUBERNETES_VERSION (several minutes on 2 cores)"
  new_module "$work/kubernetes"
  go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
  # k8s.io/kubernetes points its staging modules at ./staging; use their published twins.
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local mod
  for mod in $(sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace "$mod=$mod@$staging_version"
  done
  printf 'package build\n\nimport (\n' > tools.go
  for b in "${want[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >> tools.go; done
  printf ')\n' >> tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local pkgs=()
  for b in "${want[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go build -ldflags "$ld" -o "$bin/" "${pkgs[@]}"
}

# build_go NAME MODULE@VERSION PACKAGE [LDFLAGS]
build_go() {
  local name=$1 modver=$2 pkg=$3 ld=${4:-}
  [ -x "$bin/$name" ] && return 0
  log "$name from $modver"
  new_module "$work/$name"
  go mod edit -require "$modver"
  printf 'package build\n\nimport _ "%s"\n' "$pkg" > tools.go
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -ldflags "-s -w $ld" -o "$bin/$name" "$pkg"
}

# kwok simulates nothing without stages; use the defaults kwok itself ships (as kwokctl does):
# nodes initialise and heartbeat through leases, pods become Ready, complete, and get deleted.
kwok_stages() {
  local out="$cache_root/$key/kwok-stages.yaml"
  [ -s "$out" ] && return 0
  local dir f
  dir=$(cd "$work/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  : >"$out.tmp"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    printf -- '---\n' >>"$out.tmp"
    cat "$dir/kustomize/stage/$f.yaml" >>"$out.tmp"
  done
  mv "$out.tmp" "$out"
}

started=$SECONDS
build_go etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
build_go kwok "sigs.k8s.io/kwok@$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
  "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
build_go helm "helm.sh/helm/v4@$HELM_VERSION" helm.sh/helm/v4/cmd/helm \
  "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
build_kubernetes
kwok_stages
log "tools ready in $bin ($((SECONDS - started)) s)"
echo "$bin"
