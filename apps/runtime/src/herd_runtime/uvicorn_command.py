"""`herd-serve uvicorn ARGS`: one uvicorn process, run in this process with uvicorn's own
option parsing, the app wrapped with the health and metrics middleware and /metrics served on
HERD_METRICS_PORT. Several processes are gunicorn's job (`uvicorn_worker.UvicornWorker`)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from uvicorn.main import main as uvicorn_main

from herd_runtime import multiproc
from herd_runtime.appload import detect_interface, load_app, parse_uvicorn_ref
from herd_runtime.errors import StartupError
from herd_runtime.memory import memory_report
from herd_runtime.metrics_server import MetricsServer, multiprocess_renderer, process_renderer
from herd_runtime.middleware import instrument
from herd_runtime.settings import RuntimeSettings


def run(argv: list[str], settings: RuntimeSettings) -> None:
    params = _parse(argv)
    _check_single_process(params)
    _check_ports(params, settings)
    if settings.multiprocess_dir is not None:
        multiproc.check_writable(settings.multiprocess_dir)
        # Before the app is imported: from then on this process writes metric files.
        multiproc.reset_directory(settings.multiprocess_dir)
    if params["app_dir"] is not None:
        sys.path.insert(0, os.path.abspath(params["app_dir"]))
    app = load_app(parse_uvicorn_ref(params["app"]), call_factory=params["factory"])
    if params["interface"] == "wsgi" or detect_interface(app) == "wsgi":
        raise StartupError(
            f"app {params['app']!r} is a WSGI app: uvicorn mode serves ASGI apps, run WSGI apps "
            "with gunicorn"
        )
    metrics = _metrics_server(settings)
    metrics.start()
    params.update(app=instrument(app, "asgi", settings.health_path), factory=False)
    uvicorn_main.callback(**params)  # type: ignore[misc]
    if metrics.memory_report is not None:
        metrics.memory_report.clear()


def _parse(argv: list[str]) -> dict[str, Any]:
    try:
        context = uvicorn_main.make_context("uvicorn", list(argv))
    except click.exceptions.Exit as done:  # --help, --version
        raise SystemExit(done.exit_code) from None
    except click.ClickException as error:
        raise StartupError(f"uvicorn: {error.format_message()}") from None
    return dict(context.params)


def _check_single_process(params: dict[str, Any]) -> None:
    if params["reload"]:
        raise StartupError("uvicorn --reload is for development: herd-serve does not run it")
    workers = params["workers"] or 1
    if workers > 1:
        raise StartupError(
            f"uvicorn mode runs one process, got {workers} workers (--workers or "
            "WEB_CONCURRENCY): run several with gunicorn --worker-class "
            "uvicorn_worker.UvicornWorker"
        )


def _check_ports(params: dict[str, Any], settings: RuntimeSettings) -> None:
    if params["uds"] or params["fd"] is not None:
        return
    settings.check_app_port(params["port"], "uvicorn: invalid --port")


def _metrics_server(settings: RuntimeSettings) -> MetricsServer:
    renderer = (
        multiprocess_renderer(settings.multiprocess_dir)
        if settings.multiprocess_dir is not None
        else process_renderer()
    )
    try:
        return MetricsServer(settings.metrics_port, renderer, memory_report=memory_report(settings))
    except OSError as error:
        raise StartupError(
            f"cannot serve metrics on port {settings.metrics_port}: {error.strerror}"
        ) from None
