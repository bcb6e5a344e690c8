"""The runtime's settings, read from the environment the operator renders."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from herd_runtime.errors import StartupError

DEFAULT_METRICS_PORT = 9102
DEFAULT_HEALTH_PATH = "/healthz"
#: The variables the operator renders (its side: herd.serving.runtime).
METRICS_PORT_ENV = "HERD_METRICS_PORT"
HEALTH_PATH_ENV = "HERD_HEALTH_PATH"
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MEMORY_REPORT_ENV = "HERD_MEMORY_REPORT"


@dataclass(frozen=True)
class RuntimeSettings:
    metrics_port: int
    health_path: str
    #: Where worker processes share metric files; None in a plain single-process server.
    multiprocess_dir: Path | None
    #: The file the memory report is kept in (the container's terminationMessagePath), if any.
    memory_report: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RuntimeSettings:
        health_path = env.get(HEALTH_PATH_ENV, DEFAULT_HEALTH_PATH)
        if not health_path.startswith("/"):
            raise StartupError(f"{HEALTH_PATH_ENV} must start with '/', got {health_path!r}")
        raw_dir = env.get(MULTIPROC_DIR_ENV)
        return cls(
            metrics_port=_metrics_port(env.get(METRICS_PORT_ENV)),
            health_path=health_path,
            multiprocess_dir=Path(raw_dir) if raw_dir else None,
            memory_report=Path(report) if (report := env.get(MEMORY_REPORT_ENV)) else None,
        )

    def check_app_port(self, port: int, what: str) -> None:
        """The app's TCP port (`what` names the flag that set it) must be a port, and not the
        metrics port."""
        if not 1 <= port <= 65535:
            raise StartupError(f"{what} {port} (1 to 65535)")
        if port == self.metrics_port:
            raise StartupError(
                f"HERD_METRICS_PORT {port} is also the app's port: metrics need a port of their own"
            )


def _metrics_port(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_METRICS_PORT
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise StartupError(f"HERD_METRICS_PORT must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)
