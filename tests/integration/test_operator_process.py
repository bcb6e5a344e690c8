"""The operator process as the chart runs it with replicaCount > 1: replicas share a kopf
peering, exactly one of them reconciles, and a survivor takes over when the active one dies."""

from __future__ import annotations

import json
import time
import uuid

from bench.harness import operator
from bench.harness.cluster import Kubectl, eventually, install_crds

WEBSERVICE = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {name: web}
spec: {image: registry.local/web:1, app: "web.main:app"}
"""


def _json_lines(replica: operator.Operator) -> list[dict]:
    with open(replica.log_path) as log:
        return [json.loads(line) for line in log if line.strip()]


def _logged(replica: operator.Operator, message: str) -> bool:
    return any(message in line["message"] for line in _json_lines(replica))


def test_two_replicas_have_one_active_and_a_killed_one_is_replaced(kubectl_binary, monkeypatch):
    namespace = f"p-peering-{uuid.uuid4().hex[:6]}"  # not t-*: the shared operator stays out
    admin = Kubectl(kubectl_binary)
    operator.install_crd(admin)
    install_crds(
        admin,
        str(operator.CRD / "kopfpeerings.kopf.dev.yaml"),
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    )
    admin.create_namespace(namespace)
    kubectl = Kubectl(kubectl_binary, namespace)
    kubectl.apply("{apiVersion: kopf.dev/v1, kind: KopfPeering, metadata: {name: herd}}")
    args = ["--namespace", namespace, "--log-format", "json"]
    replicas = []
    try:
        for index, port in enumerate((18880, 18980)):
            monkeypatch.setenv("POD_ID", f"replica-{index}")  # kopf's peering identity
            replicas.append(
                operator.start(
                    liveness_port=port,
                    metrics_port=port + 10,
                    extra_args=args,
                    log_name=f"operator-peer-{index}.log",
                    peering="herd",
                )
            )
        peers = eventually(
            lambda: (
                len(status := kubectl.get("kopfpeering", "herd").get("status", {})) == 2 and status
            ),
            what="both replicas in the peering",
        )
        # Drawn at random: kopf pauses every replica when the highest priority is shared.
        priorities = [peers[f"replica-{index}"]["priority"] for index in range(2)]
        assert priorities[0] != priorities[1], peers
        higher = replicas[priorities.index(max(priorities))]
        lower = replicas[priorities.index(min(priorities))]
        # The newer replica starts paused and resumes only if it is the higher. The older one
        # acts until it reads the newer one's entry (kopf's peering is not a lock), so the
        # WebService comes once the higher one is active and, if older, the lower has paused.
        eventually(
            lambda: _logged(higher, "Resuming operations after the pause"),
            what="the higher-priority replica active",
        )
        if lower is replicas[0]:
            eventually(
                lambda: _logged(lower, "Pausing operations in favour of"),
                what="the older, lower-priority replica pausing",
            )

        kubectl.apply(WEBSERVICE)
        kubectl.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")
        # The counter moves when the handler returns, just after its Ready status landed.
        eventually(lambda: higher.reconciles() > 0, what="the reconcile counted")
        assert lower.reconciles() == 0, priorities

        higher.process.kill()  # no goodbye: the survivor waits out the peering lifetime
        killed_at = time.monotonic()
        kubectl.run("scale", "webservice/web", "--replicas", "2")
        eventually(
            lambda: kubectl.get("deployment", "web")["spec"]["replicas"] == 2,
            timeout=60,
            interval=0.5,
            what="the survivor scaling the Deployment",
        )
        # Only the survivor watches this namespace now. The peering lifetime is 15 s; one
        # reconcile and a poll interval follow it.
        assert time.monotonic() - killed_at <= 15 + 5, lower.log_tail()
    finally:
        for replica in replicas:
            operator.stop(replica)
        admin.run("delete", "namespace", namespace, "--wait=false", namespaced=False)
