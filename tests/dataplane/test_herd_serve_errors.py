"""herd-serve refuses a configuration that cannot work: fast, non-zero, one line on stderr."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FASTAPI_APP,
    FLASK_APP,
    GTHREAD,
    UVICORN_WORKER,
    free_port,
    gunicorn_args,
    herd_env,
    run_herd_serve,
)


def args_for(app: str, worker_class: str = GTHREAD, *extra: str) -> list[str]:
    args = gunicorn_args(app, free_port(), worker_class, workers=2)
    return args[:-1] + list(extra) + args[-1:]


CASES = {
    "missing module": (
        args_for("shop.mian:app"),
        "herd-serve: cannot import module 'shop.mian' (from app 'shop.mian:app'): "
        "No module named 'shop'",
    ),
    "missing attribute": (
        args_for("herd_examples.flask_app:ap"),
        "herd-serve: module 'herd_examples.flask_app' has no attribute 'ap' "
        "(from app 'herd_examples.flask_app:ap')",
    ),
    "not callable": (
        args_for("tests.dataplane.sample_apps:not_callable"),
        "herd-serve: app 'tests.dataplane.sample_apps:not_callable' is not callable: it is a int",
    ),
    "asgi app, wsgi worker": (
        args_for(FASTAPI_APP),
        f"herd-serve: app '{FASTAPI_APP}' is an ASGI app but worker class 'gthread' serves WSGI "
        "apps: use --worker-class uvicorn_worker.UvicornWorker",
    ),
    "wsgi app, asgi worker": (
        args_for(FLASK_APP, UVICORN_WORKER),
        f"herd-serve: app '{FLASK_APP}' is a WSGI app but worker class '{UVICORN_WORKER}' serves "
        "ASGI apps: use --worker-class sync, gthread or gevent",
    ),
    "malformed app": (
        args_for("herd_examples.flask_app"),
        "herd-serve: malformed app 'herd_examples.flask_app': expected 'module:callable', "
        "e.g. 'shop.main:app'",
    ),
    "unknown gunicorn option": (
        args_for(FLASK_APP, GTHREAD, "--keepalive", "75"),
        "herd-serve: gunicorn: unrecognized arguments: --keepalive",
    ),
    "without herd's config": (
        ["gunicorn", "--bind", f"127.0.0.1:{free_port()}", FLASK_APP],
        "herd-serve: gunicorn's when_ready hook is not Herd's: pass --config "
        "python:herd_runtime.gunicorn_config (metrics, their multiprocess files, request "
        "deadlines and the spreading of connections over uvicorn workers depend on it)",
    ),
    "uvicorn with a wsgi app": (
        ["uvicorn", "--port", str(free_port()), FLASK_APP],
        f"herd-serve: app '{FLASK_APP}' is a WSGI app: uvicorn mode serves ASGI apps, run WSGI "
        "apps with gunicorn",
    ),
}


def assert_refused(result, expected: str, started: float) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode != 0, result.stderr
    assert lines == [expected], result.stderr
    assert time.monotonic() - started < 10, "herd-serve should fail fast"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("args", "expected"), CASES.values(), ids=CASES.keys())
def test_refuses_with_one_clear_line(tmp_path: Path, args: list[str], expected: str) -> None:
    started = time.monotonic()
    result = run_herd_serve(args, herd_env(tmp_path, free_port()))
    assert_refused(result, expected, started)


@pytest.mark.timeout(30)
def test_refuses_a_missing_multiprocess_dir(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    started = time.monotonic()
    result = run_herd_serve(args_for(FLASK_APP), herd_env(missing, free_port()))
    assert_refused(
        result,
        f"herd-serve: PROMETHEUS_MULTIPROC_DIR '{missing}' does not exist: mount a writable "
        "emptyDir there",
        started,
    )


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this user cannot create files in. Root writes through permission bits, so
    for root the directory is made immutable instead (chattr +i)."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.fail("chattr is not installed: apt-get install -y e2fsprogs", pytrace=False)
    subprocess.run([chattr, "+i", str(directory)], check=True, timeout=10)
    try:
        yield directory
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True, timeout=10)


@pytest.mark.timeout(30)
def test_refuses_an_unwritable_multiprocess_dir(unwritable_dir: Path) -> None:
    started = time.monotonic()
    result = run_herd_serve(args_for(FLASK_APP), herd_env(unwritable_dir, free_port()))
    assert result.returncode != 0
    assert re.fullmatch(
        rf"herd-serve: PROMETHEUS_MULTIPROC_DIR '{re.escape(str(unwritable_dir))}' is not "
        rf"writable by uid {os.getuid()}: (Permission denied|Operation not permitted)\n",
        result.stderr,
    ), result.stderr
    assert time.monotonic() - started < 10
