"""`helm install` of the chart with the operator image built here: the operator runs in its own
pod on the real node, with the chart's RBAC, the `kubernetes` Service and cluster DNS, and
serves a WebService whose pods answer through the ingress."""

from __future__ import annotations

import uuid

from bench.harness.cluster import Kubectl, eventually
from tests.integration.real.workloads import host, webservice
from tests.integration.test_chart import CHART, helm  # noqa: F401 (the helm fixture)
from tests.support import real_node

IMAGE = ("ghcr.io/herd-dev/herd-operator", "dev")


def test_the_charts_operator_pod_reconciles_a_webservice(helm, kubectl_binary):  # noqa: F811
    admin = Kubectl(kubectl_binary)
    suffix = uuid.uuid4().hex[:6]
    # Not t-*: the tests' shared operator stays out of these namespaces.
    release_ns, workload_ns = f"herd-pod-{suffix}", f"pod-apps-{suffix}"
    for ns in (release_ns, workload_ns):
        admin.create_namespace(ns)
        real_node.place_on_real_node(ns)
    release = Kubectl(kubectl_binary, release_ns)
    workload = Kubectl(kubectl_binary, workload_ns)
    try:
        helm(
            "install",
            "herd",
            str(CHART),
            "--namespace",
            release_ns,
            "--wait",
            "--timeout",
            "120s",
            "--set",
            f"image.repository={IMAGE[0]},image.tag={IMAGE[1]},image.pullPolicy=Never",
            "--set",
            f"watchNamespaces={{{workload_ns}}}",
        )
        (pod,) = release.items("pods", "app.kubernetes.io/name=herd")
        assert pod["spec"]["nodeName"] == real_node.NODE
        workload.apply(webservice(workload_ns))
        workload.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=120s")
        eventually(
            lambda: real_node.get(host(workload_ns)) == 200,
            timeout=30,
            what="the app via the ingress",
        )
        (pod,) = release.items("pods", "app.kubernetes.io/name=herd")
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, pod["status"]
        log = release.run("logs", pod["metadata"]["name"]).stdout
        assert "Forbidden" not in log and "Traceback" not in log, log[-3000:]
    finally:
        helm("uninstall", "herd", "--namespace", release_ns, "--wait", "--timeout", "120s")
        for ns in (workload_ns, release_ns):
            admin.run("delete", "namespace", ns, "--wait=false", namespaced=False, check=False)
