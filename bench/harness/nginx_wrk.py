"""nginx standing in for ingress-nginx, and wrk, on loopback: each binary found (or a failed
test saying how to install it), nginx configured, started and reloaded, wrk's report parsed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.harness.appservers import LOOPBACK, Process, start_process

APT_HINT = {"nginx": "nginx-light", "wrk": "wrk"}


def require_binary(name: str) -> str:
    """The path of a prerequisite, or a failed test that says how to install it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(
            f"{name} is not installed: apt-get install -y {APT_HINT.get(name, name)} "
            "(hack/install-system-deps.sh installs the data-plane test tools)",
            pytrace=False,
        )
    return found


@dataclass
class Nginx:
    """nginx as a stand-in for ingress-nginx: its upstream settings are ingress-nginx's."""

    binary: str
    prefix: Path
    port: int
    upstreams: list[int] = field(default_factory=list)
    process: Process | None = None

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    def write_conf(self, upstreams: Sequence[int]) -> None:
        self.upstreams = list(upstreams)
        servers = "\n".join(f"        server {LOOPBACK}:{p};" for p in upstreams)
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf.write_text(
            NGINX_CONF.format(user=user, prefix=self.prefix, port=self.port, servers=servers)
        )

    def start(self, upstreams: Sequence[int]) -> None:
        self.write_conf(upstreams)
        self.process = start_process(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf)], self.prefix / "stdout.log"
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                pytest.fail(f"nginx exited:\n{(self.prefix / 'error.log').read_text()}")
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("nginx did not start listening")

    def reload(self, upstreams: Sequence[int]) -> None:
        """Rewrites the upstream list and reloads: the test's stand-in for an endpoint change."""
        self.write_conf(upstreams)
        subprocess.run(
            [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-s", "reload"],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGQUIT, timeout=10)


# What ingress-nginx renders for a Service's upstream and location, reduced to the directives
# that decide connection reuse and retries. proxy_next_upstream is ingress-nginx's default
# ("error timeout"): no http_502, so a 502 from a backend reaches the client.
NGINX_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream app {{
{servers}
        keepalive 32;
        keepalive_timeout 60s;
        keepalive_requests 10000;
    }}
    server {{
        listen {LOOPBACK}:{port};
        keepalive_timeout 75s;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 5s;
            proxy_read_timeout 40s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
""".replace("{LOOPBACK}", LOOPBACK)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    non_2xx_3xx: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    requests_per_second: float
    output: str


def parse_wrk(output: str) -> WrkResult:
    requests = re.search(r"(\d+) requests in", output)
    if requests is None:
        pytest.fail(f"unexpected wrk output:\n{output}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    connect, read, write, timeout = map(int, socket_errors.groups()) if socket_errors else (0,) * 4
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return WrkResult(
        requests=int(requests.group(1)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        connect_errors=connect,
        read_errors=read,
        write_errors=write,
        timeouts=timeout,
        requests_per_second=float(rate.group(1)) if rate else 0.0,
        output=output,
    )
