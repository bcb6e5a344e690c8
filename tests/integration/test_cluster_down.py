"""`make cluster-down` gives the host back as `make cluster-up` found it: iptables, links,
sysctls, mounts and cgroups, and no process of the cluster's left. It stops the shared cluster,
so tests/conftest.py runs it last."""

from __future__ import annotations

import difflib
import subprocess

import pytest

from bench.harness.cluster import REPO, STATE


@pytest.mark.stops_cluster
def test_cluster_down_restores_the_host(kubectl_binary):
    saved = subprocess.run(
        [REPO / "hack" / "cluster.sh", "host-before"], capture_output=True, text=True
    )
    assert saved.returncode == 0, (
        f"no saved host state ({saved.stderr.strip()}): the cluster runs without its real node "
        "(HERD_REAL_NODE=0?), so there is nothing to compare"
    )
    before = saved.stdout
    down = subprocess.run(
        [REPO / "hack" / "cluster.sh", "down"], capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stderr
    after = subprocess.run(
        [REPO / "hack" / "cluster.sh", "host-state"], capture_output=True, text=True, check=True
    ).stdout
    assert after == before, "".join(
        difflib.unified_diff(before.splitlines(True), after.splitlines(True), "before", "after")
    )
    left = subprocess.run(["pgrep", "-af", str(STATE)], capture_output=True, text=True).stdout
    assert not left, f"processes of the cluster still running:\n{left}"
