"""The `herd` and `kubectl-herd` commands as a user runs them: the installed console scripts,
with the local cluster's kubeconfig."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.harness.cluster import KUBECONFIG

BIN = Path(sys.executable).parent
HERD = BIN / "herd"
KUBECTL_HERD = BIN / "kubectl-herd"


def run(
    command: list[str], kubeconfig: Path = KUBECONFIG, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})},
        text=True,
        capture_output=True,
        timeout=120,
    )


def herd(*args: str, kubeconfig: Path = KUBECONFIG) -> subprocess.CompletedProcess[str]:
    return run([str(HERD), *args], kubeconfig)
