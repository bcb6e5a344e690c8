"""The local cluster for integration tests: started once per session, a namespace per test.

A cluster that cannot start fails every integration test with the reason; nothing is skipped.
Under pytest-xdist (`make test`) each worker has its own test operator, serving its own
namespaces (t-gw0-*, t-gw1-*) on its own ports; the first worker to need the cluster starts
it, and none stops it: `make test` runs the test that stops it afterwards, alone.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator

import pytest

from bench.harness import cluster as local

#: The xdist worker's name (gw0, gw1, ...), or "" in a run of one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
NAMESPACE_PREFIX = f"t-{WORKER}-" if WORKER else "t-"
WORKER_INDEX = int(WORKER.removeprefix("gw") or 0)


@pytest.fixture(scope="session")
def kubectl_binary() -> Iterator[object]:
    started_here = False
    try:
        binary = local.tools_bin() / "kubectl"
        local.STATE.mkdir(parents=True, exist_ok=True)
        with open(local.STATE / "tests.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one worker starts it; the others wait, then see it
            if not local.cluster_running():
                local.cluster_up()
                started_here = True
    except local.ClusterUnavailable as error:
        pytest.fail(f"the local cluster is required and could not start: {error}", pytrace=False)
    yield binary
    if started_here and not WORKER:
        local.cluster_down()


@pytest.fixture
def kubectl(kubectl_binary, request) -> Iterator[local.Kubectl]:
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"{NAMESPACE_PREFIX}{readable}-{uuid.uuid4().hex[:6]}"
    admin = local.Kubectl(kubectl_binary)
    admin.create_namespace(name)
    yield local.Kubectl(kubectl_binary, namespace=name)
    admin.run("delete", "namespace", name, "--wait=false", namespaced=False, check=False)


@pytest.fixture(scope="session")
def herd_operator(kubectl_binary) -> Iterator[object]:
    from bench.harness import operator

    admin = local.Kubectl(kubectl_binary)
    try:
        operator.install_crd(admin)
        # Only the tests' own namespaces: other tests run operators of their own elsewhere.
        # The cluster's Prometheus (the real node's pods) unless a WebService names its own.
        prometheus = local.STATE / "prometheus-url"
        running = operator.start(
            # 18180/18190 for a single process; each worker two ports of its own after those.
            liveness_port=18180 + 2 * WORKER_INDEX,
            metrics_port=18190 + 2 * WORKER_INDEX,
            log_name=f"operator-tests{WORKER and '-' + WORKER}.log",
            extra_args=[
                *["--namespace", f"{NAMESPACE_PREFIX}*"],
                *["--autoscale-interval", "3", "--canary-interval", "1"],
                *(
                    ["--prometheus-url", prometheus.read_text().strip()]
                    if prometheus.exists()
                    else []
                ),
            ],
        )
    except (RuntimeError, AssertionError) as error:
        pytest.fail(f"the Herd operator could not start: {error}", pytrace=False)
    yield running
    operator.stop(running)
