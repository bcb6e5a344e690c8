"""The built-in autoscaler on real pods: it reads their scraped requests per minute (and, with
targetUtilization, requests in service) from the cluster's Prometheus, scales the Deployment,
and the new pods serve."""

from __future__ import annotations

from bench.harness.cluster import eventually
from tests.integration.real.test_traffic import wait_ready
from tests.integration.real.workloads import host, webservice
from tests.support import real_node

TARGET_RPM = 300
LOAD_PER_SECOND = 15  # 900 RPM: 3 replicas' worth


def asked_for(kubectl, replicas: int, timeout: float) -> dict:
    """status.autoscaling once the autoscaler wants at least `replicas`."""
    return eventually(
        lambda: (
            (s := kubectl.get("webservice", "web")["status"].get("autoscaling", {})).get(
                "desiredReplicas", 0
            )
            >= replicas
            and s
        ),
        timeout=timeout,
        interval=1,
        what=f"the autoscaler asking for {replicas} replicas",
    )


def test_scraped_rpm_scales_a_real_deployment_and_the_new_pods_serve(herd_operator, on_node):
    kubectl = on_node
    autoscaling = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetRPMPerReplica": TARGET_RPM,
    }
    kubectl.apply(webservice(kubectl.namespace, replicas=1, autoscaling=autoscaling))
    wait_ready(kubectl)
    (first,) = real_node.running_pods(kubectl, "app.kubernetes.io/instance=web")
    with real_node.Load(host(kubectl.namespace), seconds=150, rate=LOAD_PER_SECOND):
        scaled = asked_for(kubectl, 3, timeout=100)
        assert scaled["currentRPM"] >= 2 * TARGET_RPM, scaled
        pods = eventually(
            lambda: (
                len(p := real_node.running_pods(kubectl, "app.kubernetes.io/instance=web")) == 3
                and all(c["ready"] for pod in p for c in pod["status"]["containerStatuses"])
                and p
            ),
            timeout=90,
            what="3 ready pods",
        )
        new = [p for p in pods if p["metadata"]["name"] != first["metadata"]["name"]]
        eventually(
            lambda: all(real_node.served(p) > 0 for p in new),
            timeout=30,
            what="the new pods answering requests from the ingress",
        )
    assert kubectl.get("deployment", "web")["spec"]["replicas"] == 3


SLOW_MS = 1500
SLOW_CLIENTS = 12  # 1.5 x the pod's 8 threads: every thread busy, a few requests waiting


def test_slow_requests_scale_out_on_utilization_while_rpm_is_under_target(herd_operator, on_node):
    """12 clients each keeping a 1.5 s request open: about 480 requests a minute, far under a
    target of 100,000, yet the pod's 8 threads (workers 1 x threads 8) are all busy."""
    kubectl = on_node
    autoscaling = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetRPMPerReplica": 100_000,
        "targetUtilization": 0.7,
    }
    kubectl.apply(webservice(kubectl.namespace, replicas=1, autoscaling=autoscaling))
    wait_ready(kubectl)
    load = real_node.Load(
        host(kubectl.namespace),
        seconds=120,
        rate=SLOW_CLIENTS * 1000 / SLOW_MS,
        threads=SLOW_CLIENTS,
        path=f"/io?ms={SLOW_MS}",
    )
    with load:
        scaled = asked_for(kubectl, 2, timeout=90)
    assert scaled["reason"] in ("Utilization", "Panic"), scaled
    assert scaled["currentRPM"] < 100_000 / 10, scaled
    assert kubectl.get("webservice", "web")["spec"]["replicas"] >= 2
