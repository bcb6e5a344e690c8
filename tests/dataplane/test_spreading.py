"""gunicorn's uvicorn workers share a burst of keep-alive connections (herd_runtime.spreading).
asyncio alone accepts a whole burst in the first worker to wake, which keeps every connection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.dataplane.servers import worker_counts, worker_spread
from bench.harness.appservers import (
    FASTAPI_APP,
    LOOPBACK,
    UVICORN_WORKER,
    free_port,
    gunicorn_args,
    herd_server,
)
from bench.harness.nginx_wrk import parse_wrk, require_binary

CONNECTIONS = 64
#: Stock asyncio gave the busiest of 2 workers 64–98 % of the requests (bench/dataplane).
BUSIEST_SHARE_AT_MOST = 0.7


@pytest.mark.timeout(60)
def test_two_uvicorn_workers_share_a_burst_of_keep_alive_connections(tmp_path: Path) -> None:
    wrk = require_binary("wrk")
    port = free_port()
    args = gunicorn_args(FASTAPI_APP, port, UVICORN_WORKER, 2, max_requests=0)
    with herd_server(args, tmp_path, port) as server:
        before = worker_counts(server)
        output = subprocess.run(
            [wrk, "-t1", f"-c{CONNECTIONS}", "-d3s", f"http://{LOOPBACK}:{port}/io?ms=20"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        spread = worker_spread(before, worker_counts(server))
    result = parse_wrk(output)
    assert result.requests > 1000 and result.non_2xx_3xx == 0, output
    assert spread.restarts == 0
    share = spread.busiest_share
    assert share <= BUSIEST_SHARE_AT_MOST, f"busiest worker {share:.0%}"
