"""gunicorn worker classes: loading them by the names gunicorn takes, and which interface
(WSGI or ASGI) each one serves."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Literal

from gunicorn.workers import SUPPORTED_WORKERS

from herd_runtime.appload import Interface
from herd_runtime.errors import StartupError

UVICORN_WORKER = "uvicorn_worker.UvicornWorker"
#: What herd-serve runs for UVICORN_WORKER: its subclass that recycles without dropping
#: connections. The operator renders UVICORN_WORKER, which older herd-runtimes load too.
RECYCLING_WORKER = "herd_runtime.recycling.RecyclingUvicornWorker"
#: Worker classes that serve ASGI apps, with their subclasses; every other one serves WSGI.
ASGI_WORKERS = (UVICORN_WORKER, "gunicorn.workers.gasgi.ASGIWorker")
#: WSGI worker classes that run each request in an OS thread (the sync worker in its main
#: thread, gthread in its pool), with their subclasses: the deadline monitor can watch those.
THREAD_WORKERS = ("gunicorn.workers.sync.SyncWorker", "gunicorn.workers.gthread.ThreadWorker")
SYNC_WORKER = "gunicorn.workers.sync.SyncWorker"

#: How a worker class's requests get their deadline: cancelling the request's asyncio task, the
#: per-process thread monitor, or nothing beyond gunicorn's heartbeat (gevent and eventlet run
#: requests in greenlets, which a thread cannot interrupt).
DeadlineKind = Literal["asyncio", "threads", "heartbeat"]


def load_worker_class(name: str) -> type:
    """`gthread` or a dotted path such as `uvicorn_worker.UvicornWorker`."""
    path = SUPPORTED_WORKERS.get(name, name)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        known = ", ".join(sorted(SUPPORTED_WORKERS))
        raise StartupError(f"unknown worker class {name!r}: use one of {known} or a dotted path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        hint = " (install herd-runtime[gevent])" if error.name == "gevent" else ""
        raise StartupError(f"cannot load worker class {name!r}: {error}{hint}") from None
    worker_class = getattr(module, class_name, None)
    if not isinstance(worker_class, type):
        raise StartupError(f"cannot load worker class {name!r}: {module_name} has no {class_name}")
    return worker_class


def with_recycling_worker(argv: Sequence[str]) -> list[str]:
    """gunicorn's arguments with uvicorn_worker.UvicornWorker replaced by this module's worker,
    in each spelling gunicorn's parser takes; every other argument as given."""
    out = list(argv)
    for index, arg in enumerate(out):
        previous = out[index - 1] if index else ""
        if arg == UVICORN_WORKER and previous in ("-k", "--worker-class"):
            out[index] = RECYCLING_WORKER
        elif arg in (f"--worker-class={UVICORN_WORKER}", f"-k{UVICORN_WORKER}"):
            out[index] = arg.removesuffix(UVICORN_WORKER) + RECYCLING_WORKER
    return out


def interface_of_worker(worker_class: type) -> Interface:
    return "asgi" if _derives(worker_class, ASGI_WORKERS) else "wsgi"


def deadline_kind(worker_class: type) -> DeadlineKind:
    if _derives(worker_class, ASGI_WORKERS):
        return "asyncio"
    return "threads" if _derives(worker_class, THREAD_WORKERS) else "heartbeat"


def reports_heartbeat_per_request(worker_class: type) -> bool:
    """The sync worker's main loop reports to the arbiter only between requests."""
    return _derives(worker_class, (SYNC_WORKER,))


def _derives(worker_class: type, paths: tuple[str, ...]) -> bool:
    for path in paths:
        module_name, _, class_name = path.rpartition(".")
        # Loading a class imported its bases: a module not imported holds none of them.
        base = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(base, type) and issubclass(worker_class, base):
            return True
    return False
