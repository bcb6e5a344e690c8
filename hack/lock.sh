#!/usr/bin/env bash
# The images' hashed lock files: requirements.lock (the operator, from pyproject.toml) and
# apps/examples/requirements.txt (herd-runtime and the examples, from their pinned list), for
# CPython 3.11 on Linux, the images' Python; apps/runtime/inject.lock (what the runtime image
# copies into pods, for every Python and platform: pure Python only). The Dockerfiles install
# them with --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
target=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header -q)
header() { sed -n '/^#/!q;p' "$1"; }

{ header requirements.lock; "$uv" pip compile pyproject.toml "${target[@]}"; } > requirements.lock.new
mv requirements.lock.new requirements.lock

examples=apps/examples/requirements.txt
# Both pyprojects' dependencies (herd-runtime itself is installed from source), resolved within
# the versions pinned now: a version moves only when a pyproject asks for it.
python3 -c '
import tomllib
for path in ("apps/runtime/pyproject.toml", "apps/examples/pyproject.toml"):
    for dependency in tomllib.load(open(path, "rb"))["project"]["dependencies"]:
        if not dependency.startswith("herd-"):
            print(dependency)
' > "$examples.in"
grep -E '^[a-z]' "$examples" | sed 's/ \\$//' > "$examples.pins"
{
  header "$examples"
  "$uv" pip compile "$examples.in" --constraint "$examples.pins" --no-annotate "${target[@]}"
} > "$examples.new"
rm "$examples.in" "$examples.pins"
mv "$examples.new" "$examples"

# within_pins LOCK [uv options]: the requirements on stdin resolved into LOCK (its header kept),
# within the examples' pinned versions: one version of each package across the images.
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

# The runtime image's set: herd-runtime's own dependencies, for any platform (markers kept)
# from 3.11 up, since the pod's Python is the app image's.
python3 -c '
import tomllib
for dependency in tomllib.load(open("apps/runtime/pyproject.toml", "rb"))["project"]["dependencies"]:
    print(dependency)
' | within_pins apps/runtime/inject.lock --universal --python-version 3.11
# The plain example images (apps/examples/Dockerfile.plain): a framework and nothing of Herd's.
for framework in flask fastapi; do
  grep -E "^ *\"$framework[><=]" apps/examples/pyproject.toml | sed -E 's/^ *"([^"]+)",?/\1/' |
    within_pins "apps/examples/plain-$framework.lock" --python-version 3.11 \
      --python-platform x86_64-manylinux_2_28
done
