"""A rolling restart of two herd-serve "pods" behind nginx configured like ingress-nginx,
under steady load from wrk, answers every request."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FLASK_APP,
    GTHREAD,
    LOOPBACK,
    Pods,
    gunicorn_args,
)
from bench.harness.nginx_wrk import Nginx, parse_wrk, require_binary

#: The pause between leaving the endpoints and SIGTERM, as a preStop sleep gives.
PRE_STOP_SECONDS = 2
WRK_CONNECTIONS = 16
WRK_SECONDS = 20


@pytest.mark.timeout(150)
def test_rolling_restart_behind_nginx_answers_every_request(
    tmp_path: Path, nginx: Nginx, record_property
) -> None:
    wrk = require_binary("wrk")
    pods = Pods(tmp_path, lambda port: gunicorn_args(FLASK_APP, port, GTHREAD, workers=2))
    load = None
    try:
        nginx.start(pods.ports)
        load = subprocess.Popen(
            [
                wrk,
                "-t2",
                f"-c{WRK_CONNECTIONS}",
                f"-d{WRK_SECONDS}s",
                "--timeout",
                "5s",
                f"http://{LOOPBACK}:{nginx.port}/io?ms=10",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        time.sleep(3)
        exit_seconds = []
        for port in pods.ports:
            nginx.reload([p for p in pods.ports if p != port])  # the endpoint is removed
            time.sleep(PRE_STOP_SECONDS)
            exit_seconds.append(pods.stop(port))
            pods.start(port)
            nginx.reload(sorted([*pods.ports]))  # the new pod is Ready
        output, _ = load.communicate(timeout=WRK_SECONDS + 30)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        pods.stop_all()

    result = parse_wrk(output)
    reloads = 2 * len(exit_seconds)
    summary = {
        "requests": result.requests,
        "non_2xx_3xx": result.non_2xx_3xx,
        "connect_errors": result.connect_errors,
        "read_errors": result.read_errors,
        "write_errors": result.write_errors,
        "timeouts": result.timeouts,
        "requests_per_second": result.requests_per_second,
        "sigterm_exit_seconds": [round(s, 2) for s in exit_seconds],
    }
    for name, value in summary.items():
        record_property(name, value)
    print(f"rolling restart: {summary}\n{output}")

    assert result.requests > 1000, output
    # Client-visible failures: an error status, a refused connection, a request that hung.
    assert result.non_2xx_3xx == 0, output
    assert result.connect_errors == 0, output
    assert result.timeouts == 0, output
    # wrk also counts a kept-alive connection that nginx closes while wrk sends on it as a
    # read or write error. Here only `nginx -s reload` (the test's stand-in for an endpoint
    # change, which ingress-nginx applies without reloading) closes client connections: its
    # old worker closes each idle one once. The app servers cannot cause these, nginx stands
    # between them and the client, and a real client resends an idempotent request.
    assert result.read_errors + result.write_errors <= WRK_CONNECTIONS * reloads, output
