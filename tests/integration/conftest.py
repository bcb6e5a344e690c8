"""The local cluster for integration tests: started once per session, a namespace per test.

A cluster that cannot start fails every integration test with the reason; nothing is skipped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from bench.harness import cluster as local


@pytest.fixture(scope="session")
def kubectl_binary() -> Iterator[object]:
    started_here = False
    try:
        binary = local.tools_bin() / "kubectl"
        if not local.cluster_running():
            local.cluster_up()
            started_here = True
    except local.ClusterUnavailable as error:
        pytest.fail(f"the local cluster is required and could not start: {error}", pytrace=False)
    yield binary
    if started_here:
        local.cluster_down()


@pytest.fixture
def kubectl(kubectl_binary, request) -> Iterator[local.Kubectl]:
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{readable}-{uuid.uuid4().hex[:6]}"
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
            extra_args=[
                *["--namespace", "t-*", "--autoscale-interval", "3", "--canary-interval", "1"],
                *(
                    ["--prometheus-url", prometheus.read_text().strip()]
                    if prometheus.exists()
                    else []
                ),
            ]
        )
    except (RuntimeError, AssertionError) as error:
        pytest.fail(f"the Herd operator could not start: {error}", pytrace=False)
    yield running
    operator.stop(running)
