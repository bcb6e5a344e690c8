"""A real Prometheus (Debian's package) on loopback, scraping targets the caller names, with the
labels Prometheus's pod discovery would give a WebService's pods."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml


def _config(targets: Sequence[tuple[int, dict[str, str]]]) -> dict:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": f"pod-{index}",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": labels}],
            }
            for index, (port, labels) in enumerate(targets)
        ],
    }


def query(base_url: str, promql: str, at: float | None = None) -> list[dict]:
    """The instant query's result from the Prometheus at `base_url`, now or `at` (Unix
    seconds); a refused query raises with Prometheus's reason (a parse error, say), not a bare
    HTTP 400."""
    params = {"query": promql, **({"time": str(at)} if at is not None else {})}
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]["result"]
    except urllib.error.HTTPError as error:
        reason = json.load(error).get("error", "")
        raise AssertionError(f"Prometheus refused {promql}: {reason}") from error


class Prometheus:
    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, targets: Sequence[tuple[int, dict[str, str]]], retention: str = "1h") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise AssertionError(
                "prometheus is not installed: run hack/install-system-deps.sh "
                "(Debian package prometheus)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(_config(targets)))
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--storage.tsdb.retention.time={retention}",
            ],
            stdout=(self.workdir / "prometheus.log").open("w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"Prometheus did not become ready:\n{self.log()}")

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        return query(self.url, promql, at)

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@contextmanager
def running(
    workdir: Path, port: int, targets: Sequence[tuple[int, dict[str, str]]], retention: str = "1h"
) -> Iterator[Prometheus]:
    """Prometheus on `port`, its TSDB in `workdir`/data (blocks put there first are served)."""
    prometheus = Prometheus(workdir, port)
    try:
        prometheus.start(targets, retention)
        yield prometheus
    finally:
        prometheus.stop()
