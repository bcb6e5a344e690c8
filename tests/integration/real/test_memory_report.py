"""herd-runtime's memory report on the real node (issue 13, item 3): the server keeps what it
last measured in the container's termination log, and once the container is killed without a
word (as the kernel kills it over its memory limit) the kubelet hands the report on in the
container's status, where the operator reads it (herd.pod_troubles).

This node's cgroup v1 has no group OOM kill: over the limit, the kernel kills one worker and
gunicorn replaces it, so a container-wide kill is made here with SIGKILL from the host, which
leaves the same status but for the reason (Error rather than OOMKilled)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.harness.cluster import eventually
from herd.pod_troubles import memory_report
from herd_runtime.memory import REPORT_SECONDS
from tests.integration.real.test_traffic import pods_on_the_real_node, wait_ready
from tests.integration.real.workloads import webservice

MIB = 2**20


def host_pid_of_container_init(container_id: str) -> int:
    """The host's pid of the process that is pid 1 inside the container."""
    bare = container_id.rpartition("://")[2]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_container = bare in (entry / "cgroup").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        nspid = next(
            (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), []
        )
        if in_container and nspid[-1:] == ["1"]:
            return int(entry.name)
    raise AssertionError(f"no process of container {bare} on this host")


def test_a_container_killed_without_a_word_leaves_its_last_memory_report(herd_operator, on_node):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, replicas=1))
    wait_ready(kubectl)
    (pod,) = pods_on_the_real_node(kubectl)
    (app,) = pod["status"]["containerStatuses"]
    time.sleep(2 * REPORT_SECONDS)  # at least one report written since the workers started
    os.kill(host_pid_of_container_init(app["containerID"]), signal.SIGKILL)

    def ended() -> dict | None:
        current = kubectl.get("pod", pod["metadata"]["name"])["status"]["containerStatuses"][0]
        return current.get("lastState", {}).get("terminated")

    terminated = eventually(ended, timeout=60, what="the kubelet seeing the container end")
    assert terminated["exitCode"] == 137, terminated
    report = memory_report(terminated.get("message", ""))
    assert report is not None, terminated
    server = kubectl.get("webservice", "web")["status"]["server"]
    assert len(report.workers) == server["workers"], (report, server)
    # A Python with gunicorn, Flask and the app: tens of MiB each, within the 256Mi limit.
    assert all(5 * MIB < held < 256 * MIB for held in (report.server, *report.workers)), report
    assert time.time() - report.at < 60, report
    print(f"the kubelet handed on: {terminated['message']}")
