"""Load from hey (Debian's package) on loopback, bounded in time."""

from __future__ import annotations

import shutil
import subprocess


def hey(
    port: int, path: str, seconds: int, rate_per_worker: int, workers: int
) -> subprocess.Popen[bytes]:
    """Start `workers` clients each sending `rate_per_worker` requests/s for `seconds`."""
    binary = shutil.which("hey")
    assert binary, "hey is not installed: run hack/install-system-deps.sh (Debian package hey)"
    return subprocess.Popen(
        [
            binary,
            "-z",
            f"{seconds}s",
            "-q",
            str(rate_per_worker),
            "-c",
            str(workers),
            f"http://127.0.0.1:{port}{path}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
