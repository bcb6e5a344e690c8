"""The PodMonitor of `herd operator --pod-monitors` against the real API server and the
Prometheus Operator's own CRD (from its Go module, as hack/build-tools.sh fetches it):
accepted by the CRD's schema as rendered, restored when deleted by hand, pruned by an operator
without the flag. An operator of its own, in a namespace the shared test operator (t-*) does
not serve."""

from __future__ import annotations

import uuid

from bench.harness import operator
from bench.harness.cluster import Kubectl, eventually, install_crds
from herd import drift, model
from herd.objectmeta import INSTANCE_LABEL, MANAGED_BY_LABEL
from herd.serving.pod_monitor import pod_monitor

WEBSERVICE = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {name: web}
spec: {image: registry.local/web:1, app: "web.main:app"}
"""
ADMIN_LABELS = (("release", "kps"),)
#: A PodMonitor the CRD's schema refuses (podMetricsEndpoints is a list): proof that the one
#: Herd made was checked against it.
INVALID = """
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: invalid}
spec: {selector: {}, podMetricsEndpoints: "metrics"}
"""


def test_the_pod_monitor_is_accepted_restored_and_pruned(kubectl_binary):
    namespace = f"pm-{uuid.uuid4().hex[:6]}"  # not t-*: the shared operator stays out
    admin = Kubectl(kubectl_binary)
    operator.install_crd(admin)
    install_crds(
        admin,
        str(admin.binary.parent / "prometheus-operator-crds.yaml"),
        "podmonitors.monitoring.coreos.com",
    )
    admin.create_namespace(namespace)
    kubectl = Kubectl(kubectl_binary, namespace)
    running = []
    try:
        running.append(
            operator.start(
                liveness_port=19180,
                metrics_port=19190,
                extra_args=[
                    *("--namespace", namespace),
                    "--pod-monitors",
                    *("--pod-monitor-label", "release=kps"),
                ],
                log_name="operator-pod-monitors.log",
            )
        )
        kubectl.apply(WEBSERVICE)
        made = eventually(
            lambda: kubectl.get("podmonitor", "web"),
            what="the PodMonitor created",
        )

        # Stored as rendered: a field the CRD's schema did not know would have been pruned,
        # and the operator would apply it again on every pass.
        ws = kubectl.get("webservice", "web")
        rendered = pod_monitor(model.parse(ws), ADMIN_LABELS)
        assert drift.contains(made, rendered), (made, rendered)
        assert made["metadata"]["labels"]["release"] == "kps"
        assert made["metadata"]["ownerReferences"][0]["uid"] == ws["metadata"]["uid"]
        selector = made["spec"]["selector"]["matchLabels"]
        assert selector == {INSTANCE_LABEL: "web", MANAGED_BY_LABEL: "herd"}
        assert made["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics"}]
        pods = kubectl.get("deployment", "web")["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pods.items()
        refused = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=INVALID, check=False)
        assert refused.returncode != 0 and "podMetricsEndpoints" in refused.stderr, refused

        kubectl.run("delete", "podmonitor", "web")
        eventually(
            lambda: kubectl.get("podmonitor", "web")["metadata"]["uid"] != made["metadata"]["uid"],
            what="the PodMonitor deleted by hand restored",
        )

        # The chart's value turned off: the operator that starts without the flag prunes it.
        operator.stop(running.pop())
        running.append(
            operator.start(
                liveness_port=19181,
                metrics_port=19191,
                extra_args=["--namespace", namespace],
                log_name="operator-pod-monitors-off.log",
            )
        )
        eventually(
            lambda: not kubectl.exists("podmonitor", "web"),
            what="the PodMonitor pruned",
        )
        assert kubectl.exists("deployment", "web")
    finally:
        for replica in running:
            operator.stop(replica)
        admin.run("delete", "namespace", namespace, "--wait=false", namespaced=False)
