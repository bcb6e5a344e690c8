"""The built-in autoscaler on real pods: it reads their scraped requests per minute from the
cluster's Prometheus, scales the Deployment, and the new pods serve."""

from __future__ import annotations

from bench.harness.cluster import eventually
from tests.integration.real.test_traffic import wait_ready
from tests.integration.real.workloads import host, webservice
from tests.support import real_node

TARGET_RPM = 300
LOAD_PER_SECOND = 15  # 900 RPM: 3 replicas' worth


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
        scaled = eventually(
            lambda: (
                (s := kubectl.get("webservice", "web")["status"].get("autoscaling", {})).get(
                    "desiredReplicas", 0
                )
                >= 3
                and s
            ),
            timeout=100,
            interval=1,
            what="the autoscaler asking for 3 replicas",
        )
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
