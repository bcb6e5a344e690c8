"""herd-runtime app servers on loopback, for the data-plane and integration tests and the benches:
free ports, herd-serve processes, pods replaced one at a time, a plain HTTP client, /metrics parsed.
Every process is started in its own session and killed with its group when it is stopped."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
HERD_SERVE = Path(sys.executable).parent / "herd-serve"
LOOPBACK = "127.0.0.1"
HERD_CONFIG = "python:herd_runtime.gunicorn_config"
FLASK_APP = "herd_examples.flask_app:app"
FASTAPI_APP = "herd_examples.fastapi_app:app"
GTHREAD = "gthread"
UVICORN_WORKER = "uvicorn_worker.UvicornWorker"

# Below the kernel's ephemeral range (32768+) and above the cluster's fixed ports
# (12xxx-18xxx): a port the kernel hands out with bind(0) can be taken a moment
# later as the local port of an outgoing connection (CI saw gunicorn fail with
# EADDRINUSE that way).
TEST_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, never handed out twice in this process."""
    for port in random.sample(TEST_PORTS, 200):
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {TEST_PORTS}")


def gunicorn_args(
    app: str,
    port: int,
    worker_class: str,
    workers: int,
    threads: int = 4,
    keep_alive: int = 75,
    max_requests: int = 5000,
    max_requests_jitter: int = 500,
    timeout: int = 30,
    graceful_timeout: int = 30,
) -> list[str]:
    """The command line the operator renders (operator/herd/serving/workload.py), on loopback."""
    args = [
        "gunicorn",
        "--config",
        HERD_CONFIG,
        "--bind",
        f"{LOOPBACK}:{port}",
        "--worker-class",
        worker_class,
        "--workers",
        str(workers),
    ]
    if worker_class == GTHREAD:
        args += ["--threads", str(threads)]
    args += [
        "--timeout",
        str(timeout),
        "--graceful-timeout",
        str(graceful_timeout),
        "--keep-alive",
        str(keep_alive),
        "--max-requests",
        str(max_requests),
        "--max-requests-jitter",
        str(max_requests_jitter),
        "--worker-tmp-dir",
        tempfile.gettempdir(),
        "--forwarded-allow-ips",
        "*",
        app,
    ]
    return args


def herd_env(multiproc_dir: Path | None, metrics_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(HERD_METRICS_PORT=str(metrics_port), HERD_HEALTH_PATH="/healthz", **extra)
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    return env


def run_herd_serve(
    args: Sequence[str], env: dict[str, str], timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """herd-serve expected to exit by itself (a refused configuration)."""
    return subprocess.run(
        [str(HERD_SERVE), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


@dataclass
class Process:
    """A long-running process in its own session, its output in a log file."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        """Signals the process and waits for it; then kills whatever is left of its group
        (everything, if it did not exit in time)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
            return self.popen.wait(10)
        self._kill_group()
        return status

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


def start_process(
    command: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> Process:
    log = log_path.open("ab")
    try:
        popen = subprocess.Popen(
            list(command),
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()  # the child holds its own descriptor
    return Process(popen, log_path)


@dataclass
class HerdServer:
    process: Process
    port: int
    metrics_port: int
    multiproc_dir: Path

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                pytest.fail(
                    f"herd-serve exited with {self.process.popen.returncode}:\n{self.tail()}"
                )
            try:
                if get(self.port, "/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"herd-serve not healthy after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.process.log().splitlines()[-lines:])

    def scrape(self) -> dict[str, float]:
        """Every sample of /metrics, keyed `name{label="value",...}` with labels sorted."""
        response = get(self.metrics_port, "/metrics")
        assert response.status == 200, response.body
        return parse_samples(response.body.decode())

    def metric_files(self) -> list[str]:
        return sorted(p.name for p in self.multiproc_dir.iterdir())


def start_herd_server(
    server_args: Sequence[str],
    workdir: Path,
    port: int,
    name: str = "app",
    multiprocess: bool = True,
    **env_extra: str,
) -> HerdServer:
    multiproc_dir = workdir / f"{name}-{port}-metrics"
    multiproc_dir.mkdir(parents=True, exist_ok=True)
    metrics_port = free_port()
    process = start_process(
        [str(HERD_SERVE), *server_args],
        workdir / f"{name}-{port}.log",
        env=herd_env(multiproc_dir if multiprocess else None, metrics_port, **env_extra),
    )
    return HerdServer(process, port, metrics_port, multiproc_dir)


@contextmanager
def herd_server(
    server_args: Sequence[str],
    workdir: Path,
    port: int,
    name: str = "app",
    multiprocess: bool = True,
    **env_extra: str,
) -> Iterator[HerdServer]:
    server = start_herd_server(server_args, workdir, port, name, multiprocess, **env_extra)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.process.stop()


class Pods:
    """App servers on fixed ports, replaced one at a time like a Deployment's pods."""

    def __init__(
        self, workdir: Path, args_for_port: Callable[[int], list[str]], count: int = 2
    ) -> None:
        self.workdir = workdir
        self.args_for_port = args_for_port
        self.generation = 0
        self.servers: dict[int, HerdServer] = {}
        try:
            for port in [free_port() for _ in range(count)]:
                self.start(port)
        except BaseException:  # pytest.fail included: stop the pods already started
            self.stop_all()
            raise

    @property
    def ports(self) -> list[int]:
        return sorted(self.servers)

    def start(self, port: int) -> HerdServer:
        self.generation += 1
        server = start_herd_server(
            self.args_for_port(port), self.workdir, port, name=f"pod{self.generation}"
        )
        self.servers[port] = server
        server.wait_healthy()
        return server

    def stop(self, port: int) -> float:
        """SIGTERM, as the kubelet sends after preStop; returns how long the exit took."""
        started = time.monotonic()
        status = self.servers.pop(port).process.stop(signal.SIGTERM, timeout=35)
        assert status == 0, f"gunicorn exited with {status} on SIGTERM"
        return time.monotonic() - started

    def stop_all(self) -> None:
        for port in self.ports:
            self.servers.pop(port).process.stop()


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def get(port: int, path: str, method: str = "GET", timeout: float = 10) -> Response:
    """One request on a fresh connection: nothing depends on keep-alive state."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Connection": "close"})
        response = connection.getresponse()
        return Response(response.status, response.read())
    finally:
        connection.close()


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    #: Connections the server reset before answering; each such request was sent again.
    resets: int = 0


def send_concurrently(
    port: int, paths: Sequence[str], threads: int = 8, attempts: int = 3
) -> LoadResult:
    """Sends every path from `threads` threads, each request on a fresh connection. A request
    whose connection is reset before any response byte never reached the app and is sent again,
    as nginx does for an idempotent request (`proxy_next_upstream error`); any other client
    error fails the test: no request may go missing."""
    result = LoadResult()
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(paths)

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                path = queue.pop()
            for attempt in range(attempts):
                try:
                    status = get(port, path).status
                except ConnectionResetError:
                    with lock:
                        result.resets += 1
                    if attempt + 1 < attempts:
                        continue
                    status = 0
                except OSError as error:
                    with lock:
                        errors.append(f"{path}: {error!r}")
                    break
                with lock:
                    result.statuses[status] += 1
                break

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, f"{len(errors)} requests failed on the client: {errors[:5]}"
    return result


def parse_samples(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str) -> float:
    return sum(value for key, value in samples.items() if key.startswith(name + "{"))


def label_values(samples: dict[str, float], name: str, label: str) -> set[str]:
    pattern = re.compile(rf'{label}="([^"]*)"')
    return {
        match.group(1)
        for key in samples
        if key.startswith(name + "{") and (match := pattern.search(key))
    }
