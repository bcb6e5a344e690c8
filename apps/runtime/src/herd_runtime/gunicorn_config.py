"""gunicorn configuration module: `--config python:herd_runtime.gunicorn_config`.

gunicorn reads every module-level name that matches one of its settings, so this module defines
hooks and the settings below and nothing else public. Options on the command line override the
settings here.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from herd_runtime import multiproc, spreading
from herd_runtime.appload import Interface
from herd_runtime.deadlines import ThreadDeadlines, deadline_seconds
from herd_runtime.memory import memory_report
from herd_runtime.metrics_server import MetricsServer, multiprocess_renderer
from herd_runtime.middleware import instrument
from herd_runtime.settings import RuntimeSettings
from herd_runtime.workers import (
    deadline_kind,
    interface_of_worker,
    reports_heartbeat_per_request,
)

# gunicorn 25.1+ opens a control socket under $HOME/.gunicorn by default: the home directory is
# read-only in Herd's pods, and the socket's thread is stopped and restarted around every fork
# of the arbiter, i.e. at every max_requests restart. Nothing in a pod uses it.
control_socket_disable = True

_metrics_server: MetricsServer | None = None
#: This worker process's deadline monitor, if its requests run in threads.
_thread_deadlines: ThreadDeadlines | None = None
#: The arbiter's listening sockets per worker slot (herd_runtime.spreading), if it spreads.
_slots: list[list[Any]] = []


def when_ready(server: Any) -> None:
    """In the arbiter, once the app's sockets are bound and before the first fork: bind a socket
    per uvicorn worker, freeze a preloaded app's objects, then serve the summed metrics."""
    global _metrics_server, _slots
    asgi = interface_of_worker(server.worker_class) == "asgi"
    inherited = server.systemd or bool(server.master_pid)
    if spreading.spreads_connections(asgi, server.num_workers, server.cfg.address, inherited):
        _slots = spreading.slot_listeners(
            server.LISTENERS, server.num_workers, server.cfg, server.log
        )
        server.LISTENERS = [listener for slot in _slots for listener in slot]
        server.log.info("Listening on a SO_REUSEPORT socket per worker (%d)", len(_slots))
    if server.cfg.preload_app:
        freeze_heap()
    settings = _settings()
    try:
        _metrics_server = MetricsServer(
            settings.metrics_port,
            multiprocess_renderer(_multiprocess_dir(settings)),
            memory_report=memory_report(settings),
        )
    except OSError as error:
        raise SystemExit(
            f"herd: cannot serve metrics on port {settings.metrics_port}: {error.strerror}"
        ) from None
    _metrics_server.start()
    server.log.info("Serving metrics at :%s/metrics", settings.metrics_port)


def freeze_heap() -> None:
    """Moves every object alive now out of the collector's reach, for good: a worker's
    collections then never write to (and so never copy) the pages of the app the arbiter
    imported. Once, here, rather than in pre_fork before every fork: a replacement worker
    inherits the frozen objects, and a full collection in the arbiter at every max_requests
    restart would delay the replacement for nothing new to freeze."""
    gc.collect()  # garbage frozen now would never be freed
    gc.freeze()


def pre_fork(server: Any, worker: Any) -> None:
    """In the arbiter: the worker about to be forked takes the slot a worker left
    (`spreading.free_slot`)."""
    if _slots:
        taken = (sibling.herd_slot for sibling in server.WORKERS.values())
        worker.herd_slot = spreading.free_slot(taken, len(_slots))


def post_fork(server: Any, worker: Any) -> None:
    """A forked worker holds a copy of the metrics listening socket: close it, so only the
    arbiter holds that port. It accepts on its slot's sockets only: close the copies of the
    others (the arbiter keeps them for their workers)."""
    if _metrics_server is not None:
        _metrics_server.socket.close()
    if _slots:
        for slot, listeners in enumerate(_slots):
            if slot != worker.herd_slot:
                for listener in listeners:
                    listener.close()
        worker.sockets = _slots[worker.herd_slot]


def post_worker_init(worker: Any) -> None:
    """In each worker, once the app is loaded: wrap it with the health and metrics middleware,
    and give every request the deadline gunicorn's `timeout` names."""
    global _thread_deadlines
    worker_class = type(worker)
    interface: Interface = interface_of_worker(worker_class)
    # gunicorn's own ASGI worker keeps the app in `asgi`; every other worker in `wsgi`.
    attribute = "asgi" if hasattr(worker, "asgi") else "wsgi"
    app = getattr(worker, attribute)
    timeout = deadline_seconds(worker.cfg.timeout)
    kind = deadline_kind(worker_class)
    log = logging.getLogger("gunicorn.error")
    if timeout is not None and kind == "threads":
        heartbeat = worker.notify if reports_heartbeat_per_request(worker_class) else None
        _thread_deadlines = ThreadDeadlines(timeout, worker.cfg.graceful_timeout, log, heartbeat)
    wrapped = instrument(
        app,
        interface,
        _settings().health_path,
        timeout=timeout if kind == "asyncio" else None,
        thread_deadlines=_thread_deadlines,
        log=log,
    )
    setattr(worker, attribute, wrapped)


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker, once its loop has returned: do not wait for request threads stuck past
    their deadline."""
    if _thread_deadlines is not None:
        _thread_deadlines.exit_if_stuck()


def on_exit(server: Any) -> None:
    """In the arbiter, exiting of its own accord: the memory report is no explanation of it."""
    if _metrics_server is not None and _metrics_server.memory_report is not None:
        _metrics_server.memory_report.clear()


def child_exit(server: Any, worker: Any) -> None:
    """In the arbiter, after a worker exited: keep its counts, drop its files."""
    try:
        multiproc.retire_process(_multiprocess_dir(_settings()), worker.pid)
    except Exception:
        # Bookkeeping must never take the arbiter down; the counts stay in the worker's files.
        server.log.exception("Could not archive the metric files of worker %s", worker.pid)


def _settings() -> RuntimeSettings:
    return RuntimeSettings.from_env()


def _multiprocess_dir(settings: RuntimeSettings) -> Path:
    if settings.multiprocess_dir is None:  # herd-serve refuses to start gunicorn without it
        raise RuntimeError("PROMETHEUS_MULTIPROC_DIR is not set")
    return settings.multiprocess_dir
