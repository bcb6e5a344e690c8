#!/usr/bin/env bash
# Builds the container images the local cluster's real node runs, with buildah (no Docker), and
# imports them into that node's containerd:
#   registry.k8s.io/pause:3.10                  the pod sandbox (hack/pause.c, static, from scratch)
#   <chart's image.repository>:dev              the operator, from the root Dockerfile
#   ghcr.io/herd-dev/example-flask:0.1.0/0.2.0  the examples, from apps/examples/Dockerfile
#   ghcr.io/herd-dev/example-fastapi:0.1.0/0.2.0   (0.2.0: same content, for the demo's canary)
#   ghcr.io/herd-dev/herd-runtime:<appVersion>  what `spec.runtime: inject` copies, apps/runtime
#   ghcr.io/herd-dev/plain-flask:0.1.0, plain-fastapi:0.1.0   the examples without herd-runtime
#   ghcr.io/herd-dev/python3.9:bullseye         Debian 11's Python only: too old for herd-runtime
# The Dockerfiles build unchanged on a local Debian base (mmdebstrap) instead of python:3.11-slim.
#
# Each image is cached as docker-archive tarballs (one per tag) outside the repository, under a
# key hashed from its inputs: the recipe in this file, the Dockerfile and its ignorefile, every
# file the build context sends, and the base image's key. An unchanged image is not rebuilt; a
# changed input rebuilds that image and what is built on it. Importing is skipped for an image
# containerd already holds from the same archive (labels on the image record the key and digest).
#
# Usage: hack/images.sh [build|import]     (default: import)
#   build   build what is missing from the cache; print "<ref> <archive>" lines on stdout
#   import  build, then import into the cluster's containerd (started by `make cluster-up`)
#   artifact DOCKERFILE TARGET|-
#           skaffold's custom builder (skaffold.yaml, profile local): build $IMAGE on the same
#           base and, when $PUSH_IMAGE is true, push it to the cluster's loopback registry
# Environment: HERD_IMAGES_CACHE (default ~/.cache/herd-images), HERD_CONTAINERD_SOCKET (default
# .cluster/containerd/containerd.sock), CTR and BUILDAH (the binaries), CONTAINERD_SNAPSHOTTER
# (read by ctr: the snapshotter to unpack into), HERD_DEBIAN_MIRROR, HERD_IMAGES_CA_BUNDLE.
# Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { sed -n 's/^# \{0,1\}//; /^Usage:/,/^Environment:/p' "$0" | sed '$d'; }

mode=${1:-import}
case $mode in
  build | import) [ $# -le 1 ] || { usage >&2; exit 2; } ;;
  artifact) [ $# -eq 3 ] && [ -n "${IMAGE:-}" ] || { usage >&2; exit 2; } ;;
  -h | --help | help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

BUILDAH=${BUILDAH:-buildah}
CTR=${CTR:-}
cache=${HERD_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/herd-images}
socket=${HERD_CONTAINERD_SOCKET:-$root/.cluster/containerd/containerd.sock}

# Fail before a long build rather than after it.
no_socket() {
  die "no containerd socket at $socket: start the local cluster first (make cluster-up)," \
    "or run 'hack/images.sh build' to build the images only"
}
if [ "$mode" = import ] && [ ! -S "$socket" ]; then no_socket; fi

need() { command -v "$1" >/dev/null || die "$1 not found on PATH (${2:-install it})"; }

# --- What is built ------------------------------------------------------------------------------

PAUSE_REF=registry.k8s.io/pause:3.10

# The operator's repository is the chart's default (image.repository in charts/herd/values.yaml).
operator_repo=$(awk '/^image:/ { inblock = 1; next } /^[^ #]/ { inblock = 0 }
  inblock && $1 == "repository:" { print $2; exit }' charts/herd/values.yaml)
[ -n "$operator_repo" ] || die "no image.repository in charts/herd/values.yaml"
OPERATOR_REFS=("$operator_repo:dev")

# The names manifests/examples/ use; the demo's canary rolls them to 0.2.0.
FLASK_REFS=(ghcr.io/herd-dev/example-flask:0.1.0 ghcr.io/herd-dev/example-flask:0.2.0)
FASTAPI_REFS=(ghcr.io/herd-dev/example-fastapi:0.1.0 ghcr.io/herd-dev/example-fastapi:0.2.0)

# The runtime image is versioned with Herd: the chart's appVersion, which the operator's
# --runtime-image defaults to (charts/herd/templates/deployment.yaml).
app_version=$(awk -F'"' '/^appVersion:/ { print $2 }' charts/herd/Chart.yaml)
[ -n "$app_version" ] || die "no appVersion in charts/herd/Chart.yaml"
RUNTIME_REFS=("ghcr.io/herd-dev/herd-runtime:$app_version")
PLAIN_FLASK_REFS=(ghcr.io/herd-dev/plain-flask:0.1.0)
PLAIN_FASTAPI_REFS=(ghcr.io/herd-dev/plain-fastapi:0.1.0)

# The Python base: Debian's python3 (3.11 in bookworm, like python:3.11-slim-bookworm).
BASE_NAME=localhost/herd-python-base
DEBIAN_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
# An older Debian's python3 (3.9), for the test of an image herd-runtime cannot run on.
OLD_PYTHON_SUITE=bullseye
OLD_PYTHON_REFS=(ghcr.io/herd-dev/python3.9:bullseye)
# The host's mirror (see /etc/apt/sources.list.d/debian.sources); plain http, signed by Release.
DEBIAN_MIRROR=${HERD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# debian_sources SUITE: the apt sources of a Debian release, security updates included.
debian_sources() {
  printf '%s\n' "deb $DEBIAN_MIRROR $1 main" "deb $DEBIAN_MIRROR $1-updates main" \
    "deb ${DEBIAN_MIRROR%/debian}/debian-security $1-security main"
}
mapfile -t DEBIAN_SOURCES < <(debian_sources "$DEBIAN_SUITE")

# MACHINE-SPECIFIC, confined to the base image: where egress goes through a TLS-intercepting
# proxy with its own CA (as on the VM this was written on), pip inside a build fails with
# "self-signed certificate in certificate chain". The base therefore carries the host's CA
# bundle (which includes that CA) in place of Debian's, points PIP_CERT, SSL_CERT_FILE and
# REQUESTS_CA_BUNDLE at it, and carries the host's /etc/pip.conf if there is one. On a host
# without such a proxy the bundle is just the usual public CAs. The project's Dockerfiles stay
# as they are. Proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, lower case too) need no
# build args: buildah passes the host's into RUN steps by default (--http-proxy=true).
HOST_CA_BUNDLE=${HERD_IMAGES_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
HOST_PIP_CONF=/etc/pip.conf

# --- Cache keys ---------------------------------------------------------------------------------

# digest_of STRING...: sha256 of the strings, one a line.
digest_of() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }

# context_digest PATH...: sha256 over the names and contents of the files under PATHs (relative
# to the repository root), in a stable order, leaving out what the ignorefiles leave out
# (__pycache__, *.egg-info). Untracked files count: the build context sends them too.
context_digest() {
  local p
  for p in "$@"; do [ -e "$p" ] || die "missing build input $p"; done
  find "$@" \( -name __pycache__ -o -name '*.egg-info' \) -prune -o \( -type f -o -type l \) -print0 |
    LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}

# file_or_none PATH: PATH's content digest, or "none".
file_or_none() { if [ -f "$1" ]; then sha256sum <"$1" | cut -d' ' -f1; else echo none; fi; }

# --- Building -----------------------------------------------------------------------------------

tmp=""
container=""
cleanup() {
  if [ -n "$container" ]; then "$BUILDAH" rm "$container" >/dev/null 2>&1 || true; fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT

built=()
cached=()
# now: microseconds since the epoch. elapsed START: seconds since START, to a tenth.
now() { echo "${EPOCHREALTIME/[.,]/}"; }
elapsed() {
  local tenths=$((($(now) - $1) / 100000))
  printf '%d.%d' $((tenths / 10)) $((tenths % 10))
}

# archive_of REF KEY: the cached docker-archive of one tag of an image built from inputs KEY,
# named after the tag (ghcr.io/herd-dev/example-flask:0.1.0: example-flask-0.1.0.KEY.tar).
archive_of() {
  local name=${1##*/}
  case $1 in "$BASE_NAME":*) name=${name%%:*} ;; esac
  echo "$cache/archives/${name//:/-}.${2:0:16}.tar"
}

# export_image REF KEY: write REF to its archive (atomically), and drop the archives of REF
# built from other inputs.
export_image() {
  local archive part
  archive=$(archive_of "$1" "$2")
  part="$archive.part"
  rm -f "$part"
  "$BUILDAH" push -q "$1" "docker-archive:$part:$1" >&2
  mv "$part" "$archive"
  local old
  for old in "${archive%.*.tar}".*.tar; do
    [ "$old" = "$archive" ] || [ ! -e "$old" ] || rm -f "$old"
  done
}

# have_archives KEY REF...: every tag's archive exists.
have_archives() {
  local key=$1 ref
  shift
  for ref in "$@"; do [ -f "$(archive_of "$ref" "$key")" ] || return 1; done
}

build_pause() { # KEY
  need gcc "apt-get install gcc libc6-dev"
  gcc -static -O2 -s -Wall -Wextra -o "$tmp/pause" "$here/pause.c"
  container=$("$BUILDAH" from scratch)
  "$BUILDAH" copy -q "$container" "$tmp/pause" /pause >/dev/null
  # As registry.k8s.io/pause runs: as nobody, the binary as entrypoint.
  "$BUILDAH" config --entrypoint '["/pause"]' --user 65535:65535 "$container"
  "$BUILDAH" commit -q --rm "$container" "$PAUSE_REF" >/dev/null
  container=""
}

build_base() { # KEY
  debian_python "$DEBIAN_SUITE" "$BASE_PACKAGES" "$BASE_NAME:$1"
}

build_old_python() { # KEY REF
  debian_python "$OLD_PYTHON_SUITE" python3,ca-certificates "$2"
}

# debian_python SUITE PACKAGES REF: a minimal Debian SUITE with PACKAGES, committed as REF.
debian_python() {
  local suite=$1 packages=$2 ref=$3 sources
  need mmdebstrap "apt-get install mmdebstrap"
  mapfile -t sources < <(debian_sources "$suite")
  # Documentation and translations stay out, as in Debian's slim images.
  mmdebstrap --quiet --variant=minbase --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$suite" "$tmp/rootfs.tar" "${sources[@]}" >&2
  container=$("$BUILDAH" from scratch)
  "$BUILDAH" add -q "$container" "$tmp/rootfs.tar" / >/dev/null
  # MACHINE-SPECIFIC (see HOST_CA_BUNDLE above): this host's CAs and pip configuration.
  local ca=/etc/ssl/certs/ca-certificates.crt env=()
  if [ -f "$HOST_CA_BUNDLE" ]; then
    "$BUILDAH" copy -q "$container" "$HOST_CA_BUNDLE" "$ca" >/dev/null
    env+=(--env "SSL_CERT_FILE=$ca" --env "PIP_CERT=$ca" --env "REQUESTS_CA_BUNDLE=$ca")
  fi
  if [ -f "$HOST_PIP_CONF" ]; then
    "$BUILDAH" copy -q "$container" "$HOST_PIP_CONF" /etc/pip.conf >/dev/null
  fi
  "$BUILDAH" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 "${env[@]}" --cmd '["python3"]' "$container"
  "$BUILDAH" commit -q --rm "$container" "$ref" >/dev/null
  rm -f "$tmp/rootfs.tar"
  container=""
}

# build_app KEY DOCKERFILE IGNOREFILE TARGET REF...: one Dockerfile target, all REFs as tags.
build_app() {
  local dockerfile=$2 ignorefile=$3 target=$4 ref args=() old
  shift 4
  [ -z "$target" ] || args+=(--target "$target")
  for ref in "$@"; do args+=(-t "$ref"); done
  old=$("$BUILDAH" images -q --no-trunc "$1" 2>/dev/null || true)
  "$BUILDAH" bud --layers --network host --ignorefile "$ignorefile" \
    --build-arg "PYTHON_IMAGE=$base_ref" -f "$dockerfile" "${args[@]}" . >&2
  # The image these tags replaced, unless something still uses it.
  if [ -n "$old" ] && [ "$old" != "$("$BUILDAH" images -q --no-trunc "$1")" ]; then
    "$BUILDAH" rmi "$old" >/dev/null 2>&1 || true
  fi
}

# image NAME KEY BUILDER [ARGS...] -- REF...: build NAME unless its archives for KEY exist.
image() {
  local name=$1 key=$2 refs=() args=() started ref
  shift 2
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  refs=("$@")
  if have_archives "$key" "${refs[@]}"; then
    cached+=("$name")
    return 0
  fi
  [ "${args[0]}" != build_app ] || ensure_base
  log "building $name (${refs[*]})"
  started=$(now)
  "${args[0]}" "$key" "${args[@]:1}" "${refs[@]}"
  for ref in "${refs[@]}"; do export_image "$ref" "$key"; done
  built+=("$name ($(elapsed "$started")s)")
  log "built $name in $(elapsed "$started")s"
}

# The base is needed only to build an app image: made (or restored from its archive) on demand,
# before that image's build.
base_ref=""
ensure_base() {
  [ -z "$base_ref" ] || return 0
  base_ref="$BASE_NAME:$base_key"
  if "$BUILDAH" inspect --type image "$base_ref" >/dev/null 2>&1; then
    cached+=(python-base)
    return 0
  fi
  local archive started
  archive=$(archive_of "$base_ref" "$base_key")
  if [ -f "$archive" ]; then
    log "restoring $base_ref from $archive"
    "$BUILDAH" pull -q "docker-archive:$archive" >/dev/null
    cached+=("python-base (restored)")
    return 0
  fi
  log "building python-base ($DEBIAN_SUITE: $BASE_PACKAGES; about 2 minutes)"
  started=$(now)
  build_base "$base_key"
  export_image "$base_ref" "$base_key"
  built+=("python-base ($(elapsed "$started")s)")
  log "built python-base in $(elapsed "$started")s"
}

started_all=$(now)
need "$BUILDAH" "apt-get install buildah"
mkdir -p "$cache/archives"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "waiting for another hack/images.sh to finish"
  flock 9
fi
tmp=$(mktemp -d "$cache/tmp.XXXXXX")

pause_key=$(digest_of "$(declare -f build_pause)" "$(file_or_none "$here/pause.c")" \
  "$(gcc --version 2>/dev/null | head -n1)")
base_key=$(digest_of "$(declare -f build_base debian_python debian_sources)" "$DEBIAN_SUITE" \
  "$BASE_PACKAGES" "${DEBIAN_SOURCES[@]}" "$DEBIAN_MIRROR" \
  "$(file_or_none "$HOST_CA_BUNDLE")" "$(file_or_none "$HOST_PIP_CONF")")
old_python_key=$(digest_of "$(declare -f build_old_python debian_python debian_sources)" \
  "$OLD_PYTHON_SUITE" "$DEBIAN_MIRROR" "$(file_or_none "$HOST_CA_BUNDLE")" \
  "$(file_or_none "$HOST_PIP_CONF")")
operator_key=$(digest_of "$(declare -f build_app)" "$base_key" \
  "$(file_or_none Dockerfile)" "$(file_or_none .dockerignore)" \
  "$(context_digest pyproject.toml requirements.lock README.md operator)")
examples_key=$(digest_of "$(declare -f build_app)" "$base_key" \
  "$(file_or_none apps/examples/Dockerfile)" "$(file_or_none apps/examples/Dockerfile.dockerignore)" \
  "$(context_digest apps/runtime/pyproject.toml apps/runtime/src \
    apps/examples/pyproject.toml apps/examples/requirements.txt apps/examples/src)")

runtime_key=$(digest_of "$(declare -f build_app)" "$base_key" \
  "$(file_or_none apps/runtime/Dockerfile)" "$(file_or_none apps/runtime/Dockerfile.dockerignore)" \
  "$(context_digest apps/runtime/pyproject.toml apps/runtime/inject.lock apps/runtime/src)")
plain_key=$(digest_of "$(declare -f build_app)" "$base_key" \
  "$(file_or_none apps/examples/Dockerfile.plain)" \
  "$(file_or_none apps/examples/Dockerfile.plain.dockerignore)" \
  "$(context_digest apps/examples/pyproject.toml apps/examples/plain-flask.lock \
    apps/examples/plain-fastapi.lock apps/examples/src)")

# Both example targets come from the same inputs; each image gets a key of its own.
flask_key=$(digest_of "$examples_key" flask)
fastapi_key=$(digest_of "$examples_key" fastapi)
plain_flask_key=$(digest_of "$plain_key" flask)
plain_fastapi_key=$(digest_of "$plain_key" fastapi)

if [ "$mode" = artifact ]; then
  dockerfile=$2 target=${3#-} ignorefile=.dockerignore
  [ ! -f "$dockerfile.dockerignore" ] || ignorefile=$dockerfile.dockerignore
  ensure_base
  log "building $IMAGE ($dockerfile${target:+, target $target})"
  build_app "" "$dockerfile" "$ignorefile" "$target" "$IMAGE"
  if [ "${PUSH_IMAGE:-false}" = true ]; then
    # The loopback registry speaks plain HTTP (hack/addons.sh).
    "$BUILDAH" push -q --tls-verify=false "$IMAGE" "docker://$IMAGE" >&2
  fi
  log "built $IMAGE in $(elapsed "$started_all")s"
  exit 0
fi

image pause "$pause_key" build_pause -- "$PAUSE_REF"
image operator "$operator_key" build_app Dockerfile .dockerignore "" -- "${OPERATOR_REFS[@]}"
image example-flask "$flask_key" build_app apps/examples/Dockerfile \
  apps/examples/Dockerfile.dockerignore flask -- "${FLASK_REFS[@]}"
image example-fastapi "$fastapi_key" build_app apps/examples/Dockerfile \
  apps/examples/Dockerfile.dockerignore fastapi -- "${FASTAPI_REFS[@]}"
image herd-runtime "$runtime_key" build_app apps/runtime/Dockerfile \
  apps/runtime/Dockerfile.dockerignore "" -- "${RUNTIME_REFS[@]}"
image plain-flask "$plain_flask_key" build_app apps/examples/Dockerfile.plain \
  apps/examples/Dockerfile.plain.dockerignore flask -- "${PLAIN_FLASK_REFS[@]}"
image plain-fastapi "$plain_fastapi_key" build_app apps/examples/Dockerfile.plain \
  apps/examples/Dockerfile.plain.dockerignore fastapi -- "${PLAIN_FASTAPI_REFS[@]}"
image python3.9 "$old_python_key" build_old_python -- "${OLD_PYTHON_REFS[@]}"

# ref key: what the node runs.
node_images=("$PAUSE_REF $pause_key")
for ref in "${OPERATOR_REFS[@]}"; do node_images+=("$ref $operator_key"); done
for ref in "${FLASK_REFS[@]}"; do node_images+=("$ref $flask_key"); done
for ref in "${FASTAPI_REFS[@]}"; do node_images+=("$ref $fastapi_key"); done
for ref in "${RUNTIME_REFS[@]}"; do node_images+=("$ref $runtime_key"); done
for ref in "${PLAIN_FLASK_REFS[@]}"; do node_images+=("$ref $plain_flask_key"); done
for ref in "${PLAIN_FASTAPI_REFS[@]}"; do node_images+=("$ref $plain_fastapi_key"); done
for ref in "${OLD_PYTHON_REFS[@]}"; do node_images+=("$ref $old_python_key"); done

summary() {
  log "done in $(elapsed "$started_all")s; built: ${built[*]:-nothing}; cached: ${cached[*]:-nothing}$1"
}

if [ "$mode" = build ]; then
  for entry in "${node_images[@]}"; do
    read -r ref key <<<"$entry"
    printf '%s %s\n' "$ref" "$(archive_of "$ref" "$key")"
  done
  summary ""
  exit 0
fi

# --- Importing ----------------------------------------------------------------------------------

[ -S "$socket" ] || no_socket
# The cluster's own ctr (containerd 2, from hack/build-tools.sh) unless told otherwise.
[ -n "$CTR" ] || CTR="$("$here/build-tools.sh")/ctr"
need "$CTR" "set CTR to the ctr of the tools hack/build-tools.sh prints"
# ctr warns on every call that cgroup v1 is deprecated (this host has v1): say it once, in
# docs/development.md, not here.
ctr_run() { "$CTR" --address "$socket" --namespace k8s.io "$@" 2> >(grep -v 'support for cgroup v1 is deprecated' >&2); }
ctr=(ctr_run)
listing=$("${ctr[@]}" images ls) || die "cannot list images through $socket"

# ctr images ls: REF TYPE DIGEST SIZE (two words) PLATFORMS LABELS (k=v,k=v or -).
digest_in() { awk -v ref="$1" '$1 == ref { print $3 }' <<<"$2"; }
labels_in() { awk -v ref="$1" '$1 == ref { print $NF }' <<<"$2"; }

imported=()
present=()
digest_now() { digest_in "$1" "$("${ctr[@]}" images ls "name==$1")"; }

# A further tag of an image imported in this run is a copy in containerd, not a second import.
declare -A first_tag=() first_digest=() # "repository key" -> the tag imported, its digest
for entry in "${node_images[@]}"; do
  read -r ref key <<<"$entry"
  digest=$(digest_in "$ref" "$listing")
  labels=",$(labels_in "$ref" "$listing"),"
  if [ -n "$digest" ] && [[ $labels == *",herd.dev/inputs=${key:0:16},"* ]] &&
    [[ $labels == *",herd.dev/digest=$digest,"* ]]; then
    present+=("$ref")
    continue
  fi
  same="${ref%:*} $key"
  digest=""
  if [ -n "${first_tag[$same]:-}" ]; then
    log "tagging ${first_tag[$same]} as $ref"
    "${ctr[@]}" images tag --force "${first_tag[$same]}" "$ref" >/dev/null || true
    digest=$(digest_now "$ref")
    [ "$digest" = "${first_digest[$same]}" ] || digest=""
  fi
  if [ -z "$digest" ]; then
    log "importing $ref"
    "${ctr[@]}" images import "$(archive_of "$ref" "$key")" >&2
    digest=$(digest_now "$ref")
    [ -n "$digest" ] || die "$ref is not in containerd after importing it"
    first_tag[$same]=$ref
    first_digest[$same]=$digest
  fi
  "${ctr[@]}" images label "$ref" "herd.dev/inputs=${key:0:16}" "herd.dev/digest=$digest" >/dev/null
  imported+=("$ref")
done
summary "; imported: ${imported[*]:-nothing}; already in containerd: ${#present[@]} images"
