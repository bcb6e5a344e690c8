#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing.
# Go itself must be on PATH (the control-plane pins fetch the Go toolchain they need).
set -euo pipefail

# nginx-light and wrk: the data-plane tests; e2fsprogs: chattr, to make a directory unwritable
# even for root in a herd-serve test; prometheus and hey: the autoscaling tests and the local
# cluster's Prometheus. The real node: runc, the CNI plugins, iptables, nftables (to drop the
# tables it made), conntrack; its images: buildah, mmdebstrap, gcc and libc6-dev (pause).
# chromium: the dashboard's browser tests (Playwright drives it; it never downloads a browser),
# with a font, which --no-install-recommends would leave out.
packages=(openssl make git ca-certificates curl nginx-light wrk e2fsprogs prometheus hey
  runc containernetworking-plugins iptables nftables conntrack iproute2 buildah mmdebstrap gcc libc6-dev
  chromium fonts-dejavu-core)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[system-deps] installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v go >/dev/null || { echo "[system-deps] Go is required on PATH (1.21+; newer toolchains are fetched)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "[system-deps] python3 (3.11+) is required on PATH" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "[system-deps] Python 3.11+ is required" >&2; exit 1; }
echo "[system-deps] ok" >&2
