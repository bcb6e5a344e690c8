"""A WebService's rollout as the tests watch and drive it: its canary status, what a Deployment
runs, and `herd` commands as a user types them."""

from __future__ import annotations

from bench.harness.cluster import Kubectl
from tests.support import cli


def canary(kubectl: Kubectl, name: str = "web") -> dict:
    return kubectl.get("webservice", name)["status"].get("canary", {})


def image_of(kubectl: Kubectl, deployment: str) -> str:
    return kubectl.get("deployment", deployment)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]


def herd(kubectl: Kubectl, *args: str, name: str = "web") -> str:
    """A `herd` command on the WebService, as a user runs it; it must succeed."""
    result = cli.herd(*args, name, "-n", kubectl.namespace)
    assert result.returncode == 0, f"herd {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout
