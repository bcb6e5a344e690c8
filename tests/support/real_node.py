"""The local cluster's real node, ingress and Prometheus, for end-to-end tests: put a namespace's
pods on the node, send requests through Traefik, and count which pods answered.

Every request goes to loopback (the ingress) or to a pod's address, inside a network namespace
the cluster created; every load is bounded in count and time."""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from bench.harness.cluster import REPO, STATE, Kubectl

NODE = "herd-node"
#: The Gateway the cluster's Traefik serves (hack/addons.sh).
GATEWAY = {"name": "web", "namespace": "herd-gateway"}


def ingress_url() -> str:
    path = STATE / "ingress-url"
    if not path.exists():
        raise AssertionError(
            f"{path} is missing: the local cluster runs without its real node "
            "(HERD_REAL_NODE=0?); end-to-end tests need `make cluster-up` with it"
        )
    return path.read_text().strip()


def place_on_real_node(namespace: str) -> None:
    """Every pod created in `namespace` from now on lands on the real node."""
    subprocess.run(
        [REPO / "hack" / "cluster.sh", "place", namespace], check=True, capture_output=True
    )


def request(
    host: str, path: str = "/", timeout: float = 5, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """One request through the ingress, with `headers` beside Host: its status and body, or 0
    when the connection failed."""
    target = urlsplit(ingress_url())
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={**(headers or {}), "Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError:
        return 0, ""
    finally:
        connection.close()


def get(host: str, path: str = "/", headers: dict[str, str] | None = None) -> int:
    return request(host, path, headers=headers)[0]


def statuses(
    host: str, count: int, path: str = "/", headers: dict[str, str] | None = None
) -> Counter[int]:
    return Counter(get(host, path, headers) for _ in range(count))


@dataclass
class Load:
    """Requests through the ingress from a few threads, at most `rate` per second in all, until
    stopped or `seconds` have passed: every status is counted, 0 for a failed connection."""

    host: str
    seconds: float
    rate: float = 20
    threads: int = 4
    path: str = "/"
    headers: dict[str, str] | None = None
    counts: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.seconds
        pause = self.threads / self.rate

        def work() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                status = get(self.host, self.path, self.headers)
                with self._lock:
                    self.counts[status] += 1
                self._stop.wait(max(0.0, pause - (time.monotonic() - started)))

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def failed(self) -> int:
        with self._lock:
            return sum(n for status, n in self.counts.items() if not 200 <= status < 400)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


def running_pods(kubectl: Kubectl, selector: str) -> list[dict]:
    return [
        pod
        for pod in kubectl.items("pods", selector)
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
    ]


def served(pod: dict, route: str = "/") -> float:
    """Requests to `route` the pod's app servers have answered (its herd-runtime metrics)."""
    ip = pod["status"]["podIP"]
    with urllib.request.urlopen(f"http://{ip}:9102/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("route") == route
    )


def served_by_track(kubectl: Kubectl, instance: str, route: str = "/") -> Counter[str]:
    """Requests to `route` answered so far, summed per herd.dev/track over the running pods."""
    counts: Counter[str] = Counter()
    for pod in running_pods(kubectl, f"app.kubernetes.io/instance={instance}"):
        counts[pod["metadata"]["labels"].get("herd.dev/track", "?")] += served(pod, route)
    return counts
