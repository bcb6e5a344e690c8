"""`herd-serve gunicorn ARGS`: reads ARGS the way gunicorn will (command line, then
GUNICORN_CMD_ARGS, then the config module or file) and checks what would otherwise fail only
after the pod started, or fail silently."""

from __future__ import annotations

import importlib
import os
import runpy
import sys
from pathlib import Path
from typing import Any, NoReturn

from gunicorn.config import Config, get_default_config_file

from herd_runtime import gunicorn_config, multiproc
from herd_runtime.appload import detect_interface, load_app, parse_gunicorn_ref
from herd_runtime.errors import StartupError
from herd_runtime.settings import RuntimeSettings
from herd_runtime.workers import interface_of_worker, load_worker_class

USAGE = "gunicorn [OPTIONS] APP_MODULE"
HERD_CONFIG = "python:herd_runtime.gunicorn_config"
#: Hooks that keep metrics correct, requests within their deadline and connections spread over
#: uvicorn workers: without them nothing serves /metrics, dead workers' files pile up, a worker
#: with a stuck request thread hangs on exit, and one uvicorn worker takes a burst of connections.
REQUIRED_HOOKS = (
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_exit",
    "child_exit",
)


def check(argv: list[str], settings: RuntimeSettings) -> Path:
    """Raises StartupError with the first problem found, cheapest checks first; returns the
    checked multiprocess directory."""
    cfg, positional = _read_config(argv)
    app_text = _app_text(cfg, positional)
    _check_hooks(cfg)
    _check_ports(cfg, settings)
    if settings.multiprocess_dir is None:
        raise StartupError(
            "PROMETHEUS_MULTIPROC_DIR is not set: gunicorn's workers need it to share metrics"
        )
    multiproc.check_writable(settings.multiprocess_dir)
    worker_class_setting = cfg.settings["worker_class"].get()
    worker_class = (
        worker_class_setting
        if isinstance(worker_class_setting, type)
        else load_worker_class(worker_class_setting)
    )
    _extend_import_path(cfg)
    app = load_app(parse_gunicorn_ref(app_text))
    _check_interface(app_text, detect_interface(app), worker_class, cfg.worker_class_str)
    return settings.multiprocess_dir


def _read_config(argv: list[str]) -> tuple[Config, list[str]]:
    """The resolved settings and the positional arguments (the app)."""
    cfg = Config(USAGE, prog="gunicorn")
    parser = cfg.parser()
    parser.error = _usage_error  # type: ignore[method-assign]  # one line, not usage + exit 2
    args = parser.parse_args(argv)
    env_args = parser.parse_args(cfg.get_cmd_args_from_env())
    location = args.config or env_args.config or get_default_config_file()
    if location:
        _apply_config_file(cfg, location)
    for namespace in (env_args, args):  # the command line wins, as in gunicorn
        for name, value in vars(namespace).items():
            if value is not None and name != "args":
                _set(cfg, name, value)
    return cfg, list(args.args)


def _usage_error(message: str) -> NoReturn:
    raise StartupError(f"gunicorn: {message}")


def _apply_config_file(cfg: Config, location: str) -> None:
    try:
        if location.startswith("python:"):
            names = vars(importlib.import_module(location.removeprefix("python:")))
        else:
            names = runpy.run_path(location.removeprefix("file:"))
    except Exception as error:
        raise StartupError(f"cannot load gunicorn config {location!r}: {error}") from error
    for name, value in names.items():
        if name in cfg.settings:
            _set(cfg, name, value)


def _set(cfg: Config, name: str, value: Any) -> None:
    try:
        cfg.set(name.lower(), value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise StartupError(f"gunicorn: invalid value for {name}: {error}") from None


def _app_text(cfg: Config, positional: list[str]) -> str:
    if cfg.paste:
        raise StartupError("herd-serve does not run PasteDeploy apps (--paste)")
    if len(positional) > 1:
        raise StartupError(f"gunicorn takes one app, got {' '.join(positional)!r}")
    app_text = positional[0] if positional else cfg.wsgi_app
    if not app_text:
        raise StartupError("no app given: end the gunicorn arguments with module:callable")
    return str(app_text)


def _check_hooks(cfg: Config) -> None:
    for hook in REQUIRED_HOOKS:
        if cfg.settings[hook].get() is not getattr(gunicorn_config, hook):
            raise StartupError(
                f"gunicorn's {hook} hook is not Herd's: pass --config {HERD_CONFIG} "
                "(metrics, their multiprocess files, request deadlines and the spreading of "
                "connections over uvicorn workers depend on it)"
            )


def _check_ports(cfg: Config, settings: RuntimeSettings) -> None:
    try:
        addresses = cfg.address
    except RuntimeError as error:  # gunicorn's message for a port that is not a number
        raise StartupError(f"gunicorn: invalid --bind: {error}") from None
    for address in addresses:
        if not isinstance(address, tuple):
            continue  # a unix socket path or an inherited file descriptor
        settings.check_app_port(address[1], "gunicorn: invalid --bind port")


def _extend_import_path(cfg: Config) -> None:
    """gunicorn imports the app with its --chdir and --pythonpath on sys.path."""
    extra = [cfg.chdir, *(cfg.pythonpath.split(",") if cfg.pythonpath else [])]
    for path in extra:
        absolute = os.path.abspath(path)
        if absolute not in sys.path:
            sys.path.insert(0, absolute)


def _check_interface(
    app_text: str, app_interface: str | None, worker_class: type, worker_name: str
) -> None:
    served = interface_of_worker(worker_class)
    if app_interface is None or app_interface == served:
        return
    advice = (
        "use --worker-class uvicorn_worker.UvicornWorker"
        if app_interface == "asgi"
        else "use --worker-class sync, gthread or gevent"
    )
    article = {"asgi": "an", "wsgi": "a"}[app_interface]
    raise StartupError(
        f"app {app_text!r} is {article} {app_interface.upper()} app but worker class "
        f"{worker_name!r} serves {served.upper()} apps: {advice}"
    )
