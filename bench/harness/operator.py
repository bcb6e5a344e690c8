"""The Herd operator as a real process on the local cluster, for integration tests and benches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench.harness.cluster import KUBECONFIG, REPO, Kubectl, install_crds

LOGS = REPO / ".cluster" / "logs"
CRD = REPO / "charts" / "herd" / "crds"


@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    metrics_port: int
    log_path: str

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            return response.read().decode()

    def counter(
        self, name: str, unless: dict[str, str] | None = None, only: dict[str, str] | None = None
    ) -> float:
        """A counter of the operator's, summed over the samples whose labels match none of
        `unless` and all of `only`."""
        return sum(
            sample.value
            for family in text_string_to_metric_families(self.metrics())
            for sample in family.samples
            if sample.name == name
            and not any(sample.labels.get(key) == value for key, value in (unless or {}).items())
            and all(sample.labels.get(key) == value for key, value in (only or {}).items())
        )

    def writes(self) -> float:
        """API writes the operator has sent (every verb but GET)."""
        return self.counter("herd_kube_api_requests_total", unless={"verb": "GET"})

    def reconciles(self) -> float:
        return self.counter("herd_reconciles_total")

    def log_tail(self, lines: int = 60) -> str:
        with open(self.log_path) as log:
            return "".join(log.readlines()[-lines:])


def install_crd(admin: Kubectl) -> None:
    install_crds(admin, str(CRD), "webservices.herd.dev")


def start(
    liveness_port: int = 18180,
    metrics_port: int = 18190,
    kubeconfig: str = str(KUBECONFIG),
    extra_args: Sequence[str] = (),
    log_name: str = "operator-tests.log",
    peering: str | None = None,
) -> Operator:
    """An operator on its own (`--standalone`), or one replica of those sharing `peering`."""
    for port in (liveness_port, metrics_port):
        # Else the health check below could be answered by a leftover operator, old code and all.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"port {port} is in use: is another operator still running?")
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / log_name
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herd.cli",
            "operator",
            *(["--peering", peering] if peering else ["--standalone"]),
            "--liveness",
            f"http://127.0.0.1:{liveness_port}/healthz",
            "--metrics-port",
            str(metrics_port),
            "--metrics-address",
            "127.0.0.1",
            # The Prometheus servers tests and benches start listen on loopback, any port.
            "--prometheus-allow",
            "http://127.0.0.1",
            *extra_args,
        ],
        stdout=log_path.open("w"),  # noqa: SIM115 (the process writes it for its lifetime)
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the operator exited with {process.returncode}:\n" + log_path.read_text()[-3000:]
            )
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=2)
            return Operator(process, metrics_port, str(log_path))
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(
        "the operator did not become live within 60 s:\n" + log_path.read_text()[-3000:]
    )


def stop(operator: Operator) -> None:
    operator.process.terminate()
    try:
        operator.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        operator.process.kill()
