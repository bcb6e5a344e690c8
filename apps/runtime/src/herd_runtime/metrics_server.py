"""The /metrics endpoint on its own port, apart from the app: scrapes never queue behind app
requests, and the app's port serves only the app (and the health path)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from herd_runtime.memory import MemoryReport
from herd_runtime.multiproc import DIRECTORY_LOCK

METRICS_PATH = "/metrics"

#: Renders the exposition for an Accept header: (body, content type).
Renderer = Callable[[str | None], tuple[bytes, str]]


class _SizedFilesCollector(MultiProcessCollector):
    """MultiProcessCollector, less the files a worker has created but not yet sized:
    prometheus_client creates a metric file empty, then truncates it to its initial size, and a
    scrape in between failed with a 500 (`unpack_from requires a buffer of at least 4 bytes`).
    A worker creates its files at its first request, and again after every restart."""

    def __init__(self, registry: CollectorRegistry, directory: Path) -> None:
        super().__init__(registry, str(directory))
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        return self.merge([str(p) for p in self.directory.glob("*.db") if _sized(p)])


def _sized(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:  # a dead worker's live gauge, removed since the glob
        return False


def multiprocess_renderer(directory: Path) -> Renderer:
    """Sums the files of every worker, live and archived, at each scrape."""

    def render(accept: str | None) -> tuple[bytes, str]:
        # A fresh registry per scrape, as prometheus_client's multiprocess docs require:
        # the collector must not be registered where the arbiter's own metrics live.
        registry = CollectorRegistry()
        _SizedFilesCollector(registry, directory)
        encoder, content_type = choose_encoder(accept)
        with DIRECTORY_LOCK:
            return encoder(registry), content_type

    return render


def process_renderer() -> Renderer:
    """This process's own registry: a single-process server."""

    def render(accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        return encoder(REGISTRY), content_type

    return render


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        port: int,
        render: Renderer,
        host: str = "0.0.0.0",
        memory_report: MemoryReport | None = None,
    ) -> None:
        super().__init__((host, port), _MetricsHandler)
        self.render = render
        self.memory_report = memory_report

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, name="herd-metrics", daemon=True).start()

    def service_actions(self) -> None:
        """Between two requests, every half second: the memory report rides on this thread
        rather than on one more in the arbiter that every fork would copy."""
        if self.memory_report is not None:
            self.memory_report.maybe_write()


class _MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if urlsplit(self.path).path != METRICS_PATH:
            self.send_error(404)
            return
        try:
            body, content_type = self.server.render(self.headers.get("Accept"))
        except Exception as error:  # a scrape failure must not look like an empty target
            self.send_error(500, explain=f"{type(error).__name__}: {error}")
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Scrapes every few seconds would drown the app's own logs."""
