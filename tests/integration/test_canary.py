"""Canary rollouts on kwok's nodes: the operator on the local cluster, a real Prometheus
scraping real herd-runtime app servers that stand in for the stable and canary pods, load from
hey on the canary. What these pin down needs control of the traffic or of the operator (no
data, promote --full, an operator killed mid-pause); promotion, rollback and the weights
through a real ingress are tested on the real node (tests/integration/real/)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from bench.harness import operator
from bench.harness import prometheus as prom
from bench.harness.appservers import free_port, gunicorn_args, herd_server
from bench.harness.cluster import REPO, Kubectl, eventually
from bench.harness.load import hey
from tests.support.http_stub import serving
from tests.support.rollout import canary, herd, image_of

APP = "herd_examples.flask_app:app"
ANALYSIS_INTERVAL = 5
FAILURE_LIMIT = 2


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


def manifest(
    rig: Rig, image: str, steps: str, route: str = "{ingress: {host: web.example.com}}"
) -> str:
    return f"""
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: web}}
spec:
  image: {image}
  app: {APP}
  replicas: 4
  route: {route}
  metrics: {{prometheusURL: "{rig.prometheus.url}"}}
  canary:
    steps: {steps}
    analysis:
      intervalSeconds: {ANALYSIS_INTERVAL}
      maxErrorRate: 0.05
      minRequests: 10
      failureLimit: {FAILURE_LIMIT}
"""


def deploy_stable(rig: Rig, steps: str, **kwargs) -> None:
    rig.kubectl.apply(manifest(rig, "web:1", steps, **kwargs))
    rig.kubectl.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")
    eventually(
        lambda: rig.kubectl.get("webservice", "web")["status"].get("stableSpec"),
        timeout=30,
        what="the stable version recorded",
    )


STEPS = "[{setWeight: 20}, {pause: {duration: 10}}, {setWeight: 50}, {pause: {}}]"


def test_no_traffic_is_inconclusive_and_pauses_instead_of_promoting(
    herd_operator, kubectl, tmp_path
):
    with rig(kubectl, tmp_path) as r:
        steps = "[{setWeight: 20}, {pause: {duration: 5}}]"
        deploy_stable(r, steps)
        r.kubectl.apply(manifest(r, "web:2", steps))
        paused = eventually(
            lambda: (c := canary(r.kubectl)).get("phase") == "Paused" and c,
            timeout=90,
            what="a pause on inconclusive analyses",
        )
        assert paused["pausedReason"].startswith("InconclusiveAnalysis")
        assert paused["lastAnalysis"]["verdict"] == "inconclusive"
        assert image_of(r.kubectl, "web") == "web:1"
        herd(r.kubectl, "abort")
        # `herd abort` returns once the operator acted.
        assert canary(r.kubectl)["phase"] == "Aborted"
        eventually(
            lambda: not r.kubectl.exists("deployment", "web-canary"),
            timeout=30,
            what="the canary removed",
        )


def test_promote_full_skips_the_remaining_steps(herd_operator, kubectl, tmp_path):
    steps = "[{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]"
    with rig(kubectl, tmp_path) as r:
        deploy_stable(r, steps)
        generator = hey(r.canary_port, "/", seconds=60, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", steps))
            eventually(
                lambda: (c := canary(r.kubectl)).get("phase") == "Paused" and c.get("weight") == 20,
                timeout=60,
                what="the first pause at weight 20",
            )
            assert "promoted (full)" in herd(r.kubectl, "promote", "--full")
            weights = set()

            def succeeded() -> bool:
                current = canary(r.kubectl)
                weights.add(current.get("weight"))
                return current.get("phase") == "Succeeded"

            eventually(succeeded, timeout=90, interval=0.2, what="Succeeded")
            assert weights <= {20, 0}, f"weights seen after promote --full: {weights}"
            assert image_of(r.kubectl, "web") == "web:2"
            eventually(
                lambda: not r.kubectl.exists("deployment", "web-canary"),
                timeout=30,
                what="the canary removed",
            )
        finally:
            generator.kill()


def test_a_restarted_operator_resumes_the_same_step_and_weight(
    herd_operator, kubectl_binary, tmp_path
):
    """The operator is SIGKILLed two seconds into a 20 s pause at weight 20 and stays down
    10 s. Resumed from status.canary, the pause still ends 20 s after it began; started over,
    it could not end before 32 s."""
    namespace = f"r-restart-{uuid.uuid4().hex[:6]}"  # not t-*: the shared operator stays out
    admin = Kubectl(kubectl_binary)
    admin.create_namespace(namespace)
    kubectl = Kubectl(kubectl_binary, namespace)
    args = ["--namespace", namespace, "--canary-interval", "1"]
    ports = {"liveness_port": 18580, "metrics_port": 18590, "log_name": "operator-restart.log"}
    steps = "[{setWeight: 20}, {pause: {duration: 20}}, {setWeight: 50}, {pause: {}}]"
    running = operator.start(extra_args=args, **ports)
    try:
        with rig(kubectl, tmp_path) as r:
            deploy_stable(r, steps)
            generator = hey(r.canary_port, "/", seconds=90, rate_per_worker=10, workers=2)
            try:
                r.kubectl.apply(manifest(r, "web:2", steps))
                paused = eventually(
                    lambda: (c := canary(r.kubectl)).get("stepIndex") == 1 and c,
                    timeout=60,
                    interval=0.2,
                    what="the timed pause at weight 20",
                )
                canary_uid = r.kubectl.get("deployment", "web-canary")["metadata"]["uid"]
                time.sleep(2)
                running.process.kill()
                running.process.wait(timeout=10)
                time.sleep(10)
                assert canary(r.kubectl)["stepIndex"] == 1 and canary(r.kubectl)["weight"] == 20
                running = operator.start(extra_args=args, **ports)

                seen = []

                def at_weight_50() -> bool:
                    current = canary(r.kubectl)
                    seen.append((current["stepIndex"], current["weight"]))
                    return current["weight"] == 50

                eventually(at_weight_50, timeout=60, interval=0.2, what="weight 50")
                pause_began = datetime.fromisoformat(paused["stepStartTime"]).timestamp()
                # stepStartTime has whole seconds; one analysis interval may follow the pause.
                assert time.time() - pause_began <= 20 + 1 + ANALYSIS_INTERVAL + 2, seen
                assert all(step >= 1 for step, _ in seen), seen
                assert {weight for _, weight in seen} <= {20, 50}, seen
                assert r.kubectl.get("deployment", "web-canary")["metadata"]["uid"] == canary_uid
            finally:
                generator.kill()
    finally:
        operator.stop(running)
        admin.run("delete", "namespace", namespace, "--wait=false", namespaced=False, check=False)


def test_hand_edits_are_undone_and_garbage_from_prometheus_never_passes(
    herd_operator, kubectl, tmp_path
):
    """Mid-rollout, someone sets the canary Ingress to 100 %: Herd puts 20 back. Then the
    metrics endpoint starts answering garbage: the analyses are inconclusive, the rollout
    pauses, and nothing is promoted."""
    steps = "[{setWeight: 20}, {pause: {duration: 600}}, {setWeight: 50}, {pause: {}}]"
    weight = "nginx.ingress.kubernetes.io/canary-weight"
    # A misconfigured proxy in front of Prometheus: HTML for every query.
    with (
        rig(kubectl, tmp_path) as r,
        serving([(200, b"<html>502 Bad Gateway</html>")]) as (
            garbage,
            _,
        ),
    ):
        deploy_stable(r, steps)
        generator = hey(r.canary_port, "/", seconds=120, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", steps))
            eventually(
                lambda: (
                    r.kubectl.exists("ingress", "web-canary")
                    and r.kubectl.get("ingress", "web-canary")["metadata"]["annotations"][weight]
                    == "20"
                ),
                timeout=60,
                what="the canary Ingress at 20 %",
            )
            r.kubectl.run("annotate", "ingress", "web-canary", f"{weight}=100", "--overwrite")
            eventually(
                lambda: (
                    r.kubectl.get("ingress", "web-canary")["metadata"]["annotations"][weight]
                    == "20"
                ),
                timeout=20,
                what="the hand-set weight undone",
            )
            r.kubectl.apply(manifest(r, "web:2", steps).replace(r.prometheus.url, garbage))
            paused = eventually(
                lambda: (c := canary(r.kubectl)).get("phase") == "Paused" and c,
                timeout=90,
                what="a pause on inconclusive analyses",
            )
            assert paused["pausedReason"].startswith("InconclusiveAnalysis"), paused
            assert paused["lastAnalysis"]["verdict"] == "inconclusive"
            assert image_of(r.kubectl, "web") == "web:1"
        finally:
            generator.kill()


@pytest.mark.disrupts_cluster  # the other worker's tests would meet a refused connection
def test_an_api_server_restart_mid_rollout_loses_nothing(herd_operator, kubectl, tmp_path):
    """The API server goes away and comes back while a canary waits at 20 % for herd promote:
    the rollout is where it was, and goes on when promoted."""
    steps = "[{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]"
    kept = ("phase", "stepIndex", "weight", "canaryRevision", "stableRevision", "startTime")
    with rig(kubectl, tmp_path) as r:
        deploy_stable(r, steps)
        generator = hey(r.canary_port, "/", seconds=150, rate_per_worker=10, workers=2)
        try:
            r.kubectl.apply(manifest(r, "web:2", steps))
            before = eventually(
                lambda: (
                    (c := canary(r.kubectl)).get("phase") == "Paused"
                    and c.get("weight") == 20
                    and c
                ),
                timeout=60,
                what="the pause at weight 20",
            )
            subprocess.run(
                [str(REPO / "hack" / "cluster.sh"), "restart-apiserver"], check=True, timeout=180
            )
            time.sleep(5)  # the operator's watches and timers reconnect
            after = canary(r.kubectl)
            assert {k: after.get(k) for k in kept} == {k: before.get(k) for k in kept}
            assert image_of(r.kubectl, "web") == "web:1"
            herd(r.kubectl, "promote")
            eventually(lambda: canary(r.kubectl).get("weight") == 50, timeout=60, what="weight 50")
        finally:
            generator.kill()


def test_a_user_metric_check_gates_the_rollout(herd_operator, kubectl, tmp_path):
    """The canary answers every request, so Herd's own checks pass; a metric check of the
    canary's own request count, at most 1 per interval, fails it on real Prometheus data."""
    check = (
        "{name: request-budget, max: 1, query: 'sum(increase(http_requests_total{namespace=\""
        '{{ namespace }}", app_kubernetes_io_instance="{{ name }}", herd_dev_track="{{ track }}"}'
        "[{{ interval }}]))'}"
    )
    steps = "[{setWeight: 20}, {pause: {duration: 5}}]"
    with rig(kubectl, tmp_path) as r:
        deploy_stable(r, steps)
        generator = hey(r.canary_port, "/", seconds=60, rate_per_worker=10, workers=2)
        try:
            gated = manifest(r, "web:2", steps).replace(
                "      failureLimit:", f"      metrics: [{check}]\n      failureLimit:"
            )
            r.kubectl.apply(gated)
            rolled = eventually(
                lambda: (c := canary(r.kubectl)).get("phase") == "RolledBack" and c,
                timeout=90,
                what="a rollback on the metric check",
            )
        finally:
            generator.kill()
        checks = {c["name"]: c for c in rolled["lastAnalysis"]["checks"]}
        assert checks["request-budget"]["verdict"] == "fail", rolled
        assert checks["request-budget"]["value"] > 1
        assert checks["errorRate"]["verdict"] == "pass", rolled
        assert image_of(r.kubectl, "web") == "web:1"
