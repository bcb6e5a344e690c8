#!/usr/bin/env bash
# The images' hashed lock files: requirements.lock (the operator, from pyproject.toml) and
# apps/examples/requirements.txt (herd-runtime and the examples, from their pinned list), for
# CPython 3.11 on Linux, the images' Python; apps/runtime/inject.lock (what the runtime image
# copies into pods, for every Python and platform: pure Python only); apps/examples/plain-*.lock
# (the examples without anything of Herd's). The Dockerfiles install them with --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
linux=(--python-version 3.11 --python-platform x86_64-manylinux_2_28)
header() { sed -n '/^#/!q;p' "$1"; }

{
  header requirements.lock
  "$uv" pip compile pyproject.toml --generate-hashes --no-header -q "${linux[@]}"
} > requirements.lock.new
mv requirements.lock.new requirements.lock

examples=apps/examples/requirements.txt

# dependencies PYPROJECT...: what the pyprojects depend on, but Herd's own packages (installed
# from source).
dependencies() {
  python3 -c '
import sys, tomllib
for path in sys.argv[1:]:
    for dependency in tomllib.load(open(path, "rb"))["project"]["dependencies"]:
        if not dependency.startswith("herd-"):
            print(dependency)
' "$@"
}

# within_pins LOCK [uv options]: the requirements on stdin resolved into LOCK (its header kept),
# within the versions the examples' lock pins now: a version moves only when a pyproject asks
# for it, and each package has one version across the images.
within_pins() {
  local lock=$1
  shift
  cat > "$lock.in"
  grep -E '^[a-z]' "$examples" | sed 's/ \\$//' > "$lock.pins"
  {
    header "$lock"
    "$uv" pip compile "$lock.in" --constraint "$lock.pins" --no-annotate --generate-hashes \
      --no-header -q "$@"
  } > "$lock.new"
  rm "$lock.in" "$lock.pins"
  mv "$lock.new" "$lock"
}

dependencies apps/runtime/pyproject.toml apps/examples/pyproject.toml |
  within_pins "$examples" "${linux[@]}"
# The runtime image's set: herd-runtime's own dependencies, for any platform (markers kept)
# from 3.11 up, since the pod's Python is the app image's.
dependencies apps/runtime/pyproject.toml |
  within_pins apps/runtime/inject.lock --universal --python-version 3.11
# The plain example images (apps/examples/Dockerfile.plain): a framework and nothing of Herd's.
for framework in flask fastapi; do
  dependencies apps/examples/pyproject.toml | grep -E "^$framework[><=]" |
    within_pins "apps/examples/plain-$framework.lock" "${linux[@]}"
done
