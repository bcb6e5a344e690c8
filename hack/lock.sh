#!/usr/bin/env bash
# The images' hashed lock files: requirements.lock (the operator, from pyproject.toml) and
# apps/examples/requirements.txt (herd-runtime and the examples, from their pinned list), for
# CPython 3.11 on Linux, the images' Python. The Dockerfiles install them with --require-hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
target=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header -q)
header() { sed -n '1,/^[^#]/p' "$1" | sed '$d'; }

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
