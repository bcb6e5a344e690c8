"""The rig the operator benchmarks share (bench/autoscale, bench/canary, bench/reconcile), built
from the harness the integration tests use too (bench/harness), not a copy of it:

- the local control plane, started only if it is not running (and then stopped again);
- a namespace of the bench's own, watched by an operator process of its own started with
  `--namespace` and nothing else, so every interval is the operator's default;
- herd-runtime gunicorn servers on loopback standing in for the pods (kwok runs no container),
  and Debian's Prometheus scraping them every second with the labels its pod discovery would
  give those pods;
- load from `hey`, always bounded in time and on loopback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import cluster as local
from bench.harness import operator as herd_operator
from bench.harness import prometheus as prom
from bench.harness.appservers import HerdServer, free_port, gunicorn_args, herd_server
from bench.harness.load import hey
from herd.kube import Kube, Ref

APP = "herd_examples.flask_app:app"
#: Seconds between two polls of the API server and Prometheus while a bench waits for a change.
POLL = 0.2


def parse_args(
    doc: str, quick_help: str, argv: list[str] | None
) -> tuple[argparse.Namespace, list[str], list[str]]:
    """The options every operator bench takes; also the arguments as given (for the report's
    command line) and the trial names: 3, or 1 with --quick."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the section here")
    args = parser.parse_args(argv)
    trials = [f"web-{k}" for k in range(1, 2 if args.quick else 4)]
    return args, sys.argv[1:] if argv is None else argv, trials


@contextmanager
def cluster() -> Iterator[local.Kubectl]:
    """kubectl (cluster-wide) on the local control plane; it is stopped at the end only if this
    call started it, so a cluster someone else runs survives the bench."""
    binary = local.tools_bin() / "kubectl"
    started = not local.cluster_running()
    if started:
        local.cluster_up()
    try:
        yield local.Kubectl(binary)
    finally:
        if started:
            local.cluster_down()


@dataclass
class Bench:
    """The bench's namespace, its operator, and direct API reads for polling (a kubectl process
    per poll would cost more CPU than everything it measures)."""

    kubectl: local.Kubectl
    operator: herd_operator.Operator
    api: Kube

    @property
    def namespace(self) -> str:
        return self.kubectl.namespace

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.api.get(Ref(kind, self.namespace, name))

    def webservice(self, name: str) -> dict[str, Any]:
        found = self.get("WebService", name)
        if found is None:
            raise RuntimeError(f"WebService {self.namespace}/{name} is gone")
        return found

    def delete_webservice(self, name: str) -> None:
        """Deletes without waiting for the children's garbage collection."""
        self.kubectl.run("delete", "webservice", name, "--wait=false", check=False)


@contextmanager
def operator(
    admin: local.Kubectl, prefix: str, liveness_port: int, metrics_port: int, log_name: str
) -> Iterator[Bench]:
    """A fresh namespace and an operator watching only it, at its default settings. At the end
    the WebServices are deleted, then the operator stops and the namespace goes."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    admin.run("create", "namespace", namespace, namespaced=False)
    kubectl = local.Kubectl(admin.binary, namespace)
    try:
        herd_operator.install_crd(admin)
        running = herd_operator.start(
            liveness_port=liveness_port,
            metrics_port=metrics_port,
            extra_args=["--namespace", namespace],
            log_name=log_name,
        )
        try:
            yield Bench(kubectl, running, Kube.from_kubeconfig(str(local.KUBECONFIG)))
        finally:
            kubectl.run("delete", "webservices", "--all", "--wait=false", check=False)
            herd_operator.stop(running)
    finally:
        admin.run("delete", "namespace", namespace, "--wait=false", namespaced=False, check=False)


def pod_labels(namespace: str, name: str, track: str = "stable") -> dict[str, str]:
    """What Prometheus's pod discovery copies from a WebService's pods onto their series."""
    return {"namespace": namespace, "app_kubernetes_io_instance": name, "herd_dev_track": track}


@dataclass
class Serving:
    """App servers by role, and the Prometheus that scrapes them."""

    servers: dict[str, HerdServer]
    prometheus: prom.Prometheus

    def value(self, promql: str) -> float | None:
        """The query's single value, or None for an empty result (no data is not zero)."""
        result = self.prometheus.query(promql)
        return float(result[0]["value"][1]) if result else None


@contextmanager
def serving(
    workdir: Path, roles: Sequence[str], scrapes: Sequence[tuple[str, dict[str, str]]]
) -> Iterator[Serving]:
    """One herd-runtime server (gunicorn, gthread, the operator's rendering) per role, and one
    Prometheus with a scrape job per (role, labels): a server scraped under several label sets
    stands in for the pods of several WebServices."""
    with ExitStack() as stack:
        servers = {}
        for role in roles:
            port = free_port()
            servers[role] = stack.enter_context(
                herd_server(gunicorn_args(APP, port, "gthread", 1), workdir, port, name=role)
            )
        targets = [(servers[role].metrics_port, labels) for role, labels in scrapes]
        prometheus = stack.enter_context(prom.running(workdir / "prometheus", free_port(), targets))
        yield Serving(servers, prometheus)


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


@dataclass
class Load:
    """hey against one app server: `workers` clients at `rate` requests/s each, for at most
    `seconds` (hey stops itself; `stop` ends it earlier)."""

    process: subprocess.Popen[bytes]
    rpm: float

    @classmethod
    def start(cls, port: int, path: str, workers: int, rate: int, seconds: float) -> Load:
        return cls(hey(port, path, int(seconds), rate, workers), 60.0 * workers * rate)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def until(
    check: Callable[[], Any], timeout: float, what: str, interval: float = POLL
) -> tuple[float, Any]:
    """Polls `check` until it returns something truthy: (time.monotonic() then, the value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return time.monotonic(), value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(interval)
