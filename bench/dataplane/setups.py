"""The server configurations the bench runs: gunicorn's defaults, Herd's auto-tuning, a grid.

Herd's configurations (auto and grid alike) are resolved and rendered by the operator's own
code, `herd.desired.config_of` and `herd.serving.workload.server_args`, so a cell runs the
command line a pod would; only the bind address changes (loopback, see `servers.on_loopback`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from bench.harness import appservers
from herd import desired, model
from herd.serving.workload import server_args

DEFAULTS = "gunicorn defaults"
HERD_AUTO = "Herd auto"
GRID = "grid"
#: Replaced by the cell's own loopback port when it runs.
PLACEHOLDER_BIND = "0.0.0.0:8000"


@dataclass(frozen=True)
class App:
    name: str
    interface: model.Interface
    target: str  # module:callable, as herd-serve takes it


APPS = (
    App("flask", "wsgi", "herd_examples.flask_app:app"),
    App("fastapi", "asgi", "herd_examples.fastapi_app:app"),
)


@dataclass(frozen=True)
class Setup:
    """One server configuration on a number of CPUs."""

    worker_class: str  # Herd's name: sync, gthread, gevent or uvicorn
    workers: int
    threads: int  # 1 unless gthread
    cpus: int
    args: tuple[str, ...]  # what follows `herd-serve`

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers}×{self.threads}"
        return f"{self.worker_class} ×{self.workers}"


@dataclass(frozen=True)
class Cell:
    """A setup measured once, with every role it plays in the table (e.g. Herd auto and grid)."""

    roles: tuple[str, ...]
    setup: Setup


@dataclass(frozen=True)
class Grid:
    """Worker counts (and gthread thread counts) tried at 1 CPU."""

    sync_workers: tuple[int, ...]
    gthread_workers: tuple[int, ...]
    gthread_threads: tuple[int, ...]
    gevent_workers: tuple[int, ...]
    uvicorn_workers: tuple[int, ...]


FULL_GRID = Grid((1, 3), (1, 2, 4), (8, 32, 64), (1, 2), (1, 2, 3))
QUICK_GRID = Grid((1,), (1, 4), (8, 64), (1,), (1, 2))


def gevent_available() -> bool:
    return importlib.util.find_spec("gevent") is not None


def _manifest(app: App, workload: str, cpus: int, server: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": "bench", "namespace": "bench"},
        "spec": {
            "image": "bench",
            "app": app.target,
            "interface": app.interface,
            "resources": {"limits": {"cpu": str(cpus)}},
            "server": {"workload": workload, **server},
        },
    }


def herd_setup(app: App, workload: str, cpus: int, server: dict[str, Any]) -> Setup:
    """What the operator runs for this `spec.server` (empty: auto) and a CPU limit of `cpus`."""
    ws = model.parse(_manifest(app, workload, cpus, server))
    config = desired.config_of(ws)  # as the operator resolves it: the pod's own resources
    args = tuple(server_args(ws, config))
    return Setup(config.worker_class, config.workers, config.threads, cpus, args)


def defaults_setup(app: App, cpus: int) -> Setup:
    """gunicorn with only what herd-serve requires (Herd's hooks): 1 sync worker. An ASGI app
    gets the uvicorn worker, otherwise defaults too: the sync worker cannot serve ASGI."""
    args = ["gunicorn", "--config", appservers.HERD_CONFIG, "--bind", PLACEHOLDER_BIND]
    worker_class = "sync"
    if app.interface == "asgi":
        worker_class = "uvicorn"
        args += ["--worker-class", appservers.UVICORN_WORKER]
    return Setup(worker_class, 1, 1, cpus, (*args, app.target))


def grid_servers(grid: Grid, interface: model.Interface) -> list[dict[str, Any]]:
    """The explicit `spec.server` blocks of the grid's cells."""
    if interface == "asgi":
        return [{"workerClass": "uvicorn", "workers": w} for w in grid.uvicorn_workers]
    servers: list[dict[str, Any]] = [
        {"workerClass": "sync", "workers": w} for w in grid.sync_workers
    ]
    servers += [
        {"workerClass": "gthread", "workers": w, "threads": t}
        for w in grid.gthread_workers
        for t in grid.gthread_threads
    ]
    if gevent_available():
        servers += [{"workerClass": "gevent", "workers": w} for w in grid.gevent_workers]
    return servers


def cells(app: App, workload: str, grid: Grid) -> list[Cell]:
    """Defaults and Herd auto at 1 and 2 CPUs, then the grid at 1 CPU; a setup that plays
    several roles (Herd auto at 1 CPU is often a grid cell) is measured once."""
    roles: dict[Setup, list[str]] = {}
    for cpus in (1, 2):
        roles.setdefault(defaults_setup(app, cpus), []).append(DEFAULTS)
    for cpus in (1, 2):
        roles.setdefault(herd_setup(app, workload, cpus, {}), []).append(HERD_AUTO)
    for server in grid_servers(grid, app.interface):
        roles.setdefault(herd_setup(app, workload, 1, server), []).append(GRID)
    return [Cell(tuple(names), setup) for setup, names in roles.items()]
