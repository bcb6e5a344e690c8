"""End-to-end tests on the local cluster's real node: each test's namespace places its pods
there, and requests go through the cluster's Traefik."""

from __future__ import annotations

import pytest

from bench.harness.cluster import Kubectl
from tests.support import real_node


@pytest.fixture
def on_node(kubectl: Kubectl) -> Kubectl:
    """The test's namespace, its pods placed on the real node."""
    real_node.ingress_url()  # fails with the reason when the cluster has no real node
    real_node.place_on_real_node(kubectl.namespace)
    return kubectl
