"""Canary rollouts end to end: the operator on the local cluster, a real Prometheus scraping
real herd-runtime app servers that stand in for the stable and canary pods (kwok simulates
those), load from hey on the canary, and the router objects following the weights."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.dataplane.support import free_port, gunicorn_args, herd_server
from tests.support import prometheus as prom
from tests.support.cluster import Kubectl, eventually, install_crds
from tests.support.load import hey

APP = "herd_examples.flask_app:app"


@dataclass
class Rig:
    kubectl: Kubectl
    canary_port: int
    prometheus: prom.Prometheus


@contextmanager
def rig(kubectl: Kubectl, tmp_path: Path) -> Iterator[Rig]:
    with ExitStack() as stack:
        targets = []
        ports = {}
        for track in ("stable", "canary"):
            port = free_port()
            server = stack.enter_context(
                herd_server(gunicorn_args(APP, port, "gthread", 1), tmp_path, port, name=track)
            )
            ports[track] = port
            targets.append(
                (
                    server.metrics_port,
                    {
                        "namespace": kubectl.namespace,
                        "app_kubernetes_io_instance": "web",
                        "herd_dev_track": track,
                    },
                )
            )
        prometheus = stack.enter_context(
            prom.running(tmp_path / "prometheus", free_port(), targets)
        )
        yield Rig(kubectl, ports["canary"], prometheus)


def manifest(rig: Rig, image: str, steps: str, ingress: str = "{host: web.example.com}") -> str:
    return f"""
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: web}}
spec:
  image: {image}
  app: {APP}
  replicas: 4
  ingress: {ingress}
  metrics: {{prometheusURL: "{rig.prometheus.url}"}}
  canary:
    steps: {steps}
    analysis: {{intervalSeconds: 5, maxErrorRate: 0.05, minRequests: 10, failureLimit: 2}}
"""


def canary(rig: Rig) -> dict:
    return rig.kubectl.get("webservice", "web")["status"].get("canary", {})


def deploy_stable(rig: Rig, steps: str, **kwargs) -> None:
    rig.kubectl.apply(manifest(rig, "web:1", steps, **kwargs))
    rig.kubectl.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")
    eventually(
        lambda: rig.kubectl.get("webservice", "web")["status"].get("stableSpec"),
        timeout=30,
        what="the stable version recorded",
    )


def image_of(rig: Rig, deployment: str) -> str:
    return rig.kubectl.get("deployment", deployment)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]


def intend(rig: Rig, action: str) -> None:
    """What `herd promote` and friends write: an intent in the status subresource."""
    rig.kubectl.run(
        "patch",
        "webservice",
        "web",
        "--subresource",
        "status",
        "--type",
        "merge",
        "-p",
        json.dumps({"status": {"intent": {"action": action, "id": uuid.uuid4().hex}}}),
    )


STEPS = "[{setWeight: 20}, {pause: {duration: 10}}, {setWeight: 50}, {pause: {}}]"


def test_a_healthy_canary_walks_the_steps_and_is_promoted(herd_operator, kubectl, tmp_path):
    with rig(kubectl, tmp_path) as r:
        deploy_stable(r, STEPS)
        generator = hey(r.canary_port, "/", seconds=90, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", STEPS))
            eventually(lambda: canary(r).get("weight") == 20, timeout=60, what="weight 20")
            assert image_of(r, "web-canary") == "web:2" and image_of(r, "web") == "web:1"
            notes = r.kubectl.get("ingress", "web-canary")["metadata"]["annotations"]
            assert notes["nginx.ingress.kubernetes.io/canary"] == "true"
            assert notes["nginx.ingress.kubernetes.io/canary-weight"] == "20"
            assert r.kubectl.get("deployment", "web-canary")["spec"]["replicas"] == 1

            paused = eventually(
                lambda: (c := canary(r)).get("phase") == "Paused" and c,
                timeout=90,
                what="the indefinite pause at weight 50",
            )
            assert paused["weight"] == 50 and paused["lastAnalysis"]["verdict"] == "pass", paused[
                "lastAnalysis"
            ]
            assert r.kubectl.get("deployment", "web-canary")["spec"]["replicas"] == 2
            ws = r.kubectl.get("webservice", "web")
            progressing = next(c for c in ws["status"]["conditions"] if c["type"] == "Progressing")
            assert progressing["reason"] == "CanaryPaused"

            generation = ws["metadata"]["generation"]
            intend(r, "promote")
            eventually(
                lambda: canary(r).get("phase") == "Succeeded",
                timeout=90,
                what="promotion to Succeeded",
            )
            assert image_of(r, "web") == "web:2"
            eventually(
                lambda: not r.kubectl.exists("deployment", "web-canary"),
                timeout=30,
                what="the canary Deployment removed",
            )
            assert not r.kubectl.exists("ingress", "web-canary")
            # The intent went to the status: the spec (and a GitOps diff) never changed.
            assert r.kubectl.get("webservice", "web")["metadata"]["generation"] == generation
        finally:
            generator.kill()


def test_a_failing_canary_is_rolled_back(herd_operator, kubectl, tmp_path):
    with rig(kubectl, tmp_path) as r:
        deploy_stable(r, STEPS)
        generator = hey(r.canary_port, "/fail?rate=0.5", seconds=60, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", STEPS))
            rolled = eventually(
                lambda: (c := canary(r)).get("phase") == "RolledBack" and c,
                timeout=90,
                what="rollback",
            )
            assert rolled["weight"] == 0 and rolled["failedChecks"] == 2
            assert rolled["lastAnalysis"]["verdict"] == "fail"
            eventually(
                lambda: not r.kubectl.exists("deployment", "web-canary"),
                timeout=30,
                what="the canary removed",
            )
            assert image_of(r, "web") == "web:1"  # the stable kept serving throughout
            ws = r.kubectl.get("webservice", "web")
            degraded = next(c for c in ws["status"]["conditions"] if c["type"] == "Degraded")
            assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
            events = json.loads(r.kubectl.run("get", "events", "-o", "json").stdout)["items"]
            assert any(e["reason"] == "RolledBack" for e in events)
        finally:
            generator.kill()


def test_no_traffic_is_inconclusive_and_pauses_instead_of_promoting(
    herd_operator, kubectl, tmp_path
):
    with rig(kubectl, tmp_path) as r:
        steps = "[{setWeight: 20}, {pause: {duration: 5}}]"
        deploy_stable(r, steps)
        r.kubectl.apply(manifest(r, "web:2", steps))
        paused = eventually(
            lambda: (c := canary(r)).get("phase") == "Paused" and c,
            timeout=90,
            what="a pause on inconclusive analyses",
        )
        assert paused["pausedReason"].startswith("InconclusiveAnalysis")
        assert paused["lastAnalysis"]["verdict"] == "inconclusive"
        assert image_of(r, "web") == "web:1"
        intend(r, "abort")
        eventually(lambda: canary(r).get("phase") == "Aborted", timeout=30, what="abort")
        eventually(
            lambda: not r.kubectl.exists("deployment", "web-canary"),
            timeout=30,
            what="the canary removed",
        )


def test_gateway_api_splits_traffic_with_one_httproute(herd_operator, kubectl, tmp_path):
    install_crds(
        kubectl,
        str(kubectl.binary.parent / "gateway-api-crds.yaml"),
        "httproutes.gateway.networking.k8s.io",
    )
    with rig(kubectl, tmp_path) as r:
        ingress = "{host: web.example.com, gateway: {name: public, namespace: infra}}"
        deploy_stable(r, STEPS, ingress=ingress)
        route = r.kubectl.get("httproute", "web")
        assert route["spec"]["rules"][0]["backendRefs"] == [
            {"group": "", "kind": "Service", "name": "web", "port": 8000, "weight": 100}
        ]
        assert not r.kubectl.exists("ingress", "web")
        generator = hey(r.canary_port, "/", seconds=40, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", STEPS, ingress=ingress))
            eventually(lambda: canary(r).get("weight") == 20, timeout=60, what="weight 20")
            backends = r.kubectl.get("httproute", "web")["spec"]["rules"][0]["backendRefs"]
            assert [(b["name"], b["weight"]) for b in backends] == [("web", 80), ("web-canary", 20)]
        finally:
            generator.kill()
