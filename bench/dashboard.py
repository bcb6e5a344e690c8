"""bench/dashboard: how long `herd dashboard` takes from the process's start to its first 200
of the list page, against a stand-in API server on loopback (no cluster).

The stand-in answers the list of WebServices with a few of them, and holds the dashboard's
watch open without events, as an idle API server does. The installed console script is started
as a user starts it, with a kubeconfig naming the stand-in, and the list page is asked for
every 10 ms until it answers 200.

    .venv/bin/python -m bench.dashboard [--runs N] [--write docs/dashboard.md]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench import markdown
from bench.harness.appservers import free_port

HERD = Path(sys.executable).parent / "herd"
#: The claim in docs/dashboard.md the benchmark checks.
BOUND_SECONDS = 2.0
POLL_SECONDS = 0.01
WEBSERVICES = 5


def webservice(name: str) -> dict[str, object]:
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": name, "namespace": "bench", "resourceVersion": "1"},
        "spec": {"image": "web:1", "app": "main:app", "replicas": 2},
        "status": {"readyReplicas": 2, "server": {"workerClass": "uvicorn", "workers": 2}},
    }


@contextlib.contextmanager
def api_server() -> Iterator[str]:
    """A stand-in API server: the WebServices of namespace `bench`, a watch that stays idle."""
    items = json.dumps({"items": [webservice(f"web-{i}") for i in range(WEBSERVICES)]}).encode()
    stopping = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's name)
            if "watch=true" in self.path:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                stopping.wait(60)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(items)))
            self.end_headers()
            self.wfile.write(items)

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()


def kubeconfig(server: str, directory: Path) -> Path:
    path = directory / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stub", "cluster": {"server": server}}],
        "users": [{"name": "bench", "user": {"token": "bench-token"}}],
        "contexts": [
            {"name": "stub", "context": {"cluster": "stub", "user": "bench", "namespace": "bench"}}
        ],
        "current-context": "stub",
    }
    path.write_text(json.dumps(config))
    return path


def list_page_status(port: int) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/")
        return connection.getresponse().status
    except OSError:
        return None


def time_to_first_page(config: Path) -> float:
    """Seconds from starting `herd dashboard` to its first 200 of the list page."""
    port = free_port()
    began = time.monotonic()
    process = subprocess.Popen(
        [str(HERD), "dashboard", "--port", str(port)],
        env={**os.environ, "KUBECONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while list_page_status(port) != 200:
            if process.poll() is not None:
                raise RuntimeError(f"herd dashboard exited: {process.stderr.read()}")
            if time.monotonic() - began > 30:
                raise RuntimeError("herd dashboard served no list page within 30 s")
            time.sleep(POLL_SECONDS)
        return time.monotonic() - began
    finally:
        process.terminate()
        process.wait(timeout=10)


def render(times: Sequence[float], argv: Sequence[str]) -> str:
    rows = [[str(i + 1), f"{t:.2f}"] for i, t in enumerate(times)]
    lines = [
        "## `herd dashboard`: start to the first list page (bench/dashboard)",
        "",
        *markdown.run_lines("bench.dashboard", argv),
        f"- Rig: a stand-in API server on loopback ({WEBSERVICES} WebServices, an idle watch), "
        f"the installed `herd` console script, the list page asked for every "
        f"{POLL_SECONDS * 1000:.0f} ms.",
        "",
        *markdown.table(["run", "start → first 200 of / (s)"], rows, "lr"),
        "",
        f"p50 **{statistics.median(times):.2f} s**, max **{max(times):.2f} s** "
        f"(bound: {BOUND_SECONDS:.0f} s).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section there")
    args = parser.parse_args(argv)
    arguments = sys.argv[1:] if argv is None else argv
    with api_server() as server, tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        config = kubeconfig(server, Path(tmp))
        time_to_first_page(config)  # a first start fills the page cache and the .pyc files
        times = [time_to_first_page(config) for _ in range(args.runs)]
    report = render(times, arguments)
    print(report)
    if args.write:
        markdown.replace_section(args.write, "dashboard", report, title="# `herd dashboard`")
    return 0 if max(times) < BOUND_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
