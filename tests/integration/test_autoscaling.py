"""The built-in autoscaler end to end: a real herd-runtime app server under load from hey, a
real Prometheus scraping it, the operator deciding, and the WebService's scale subresource
moving the Deployment on the local cluster.

The app server stands in for the WebService's pods (kwok simulates those): Prometheus scrapes
it with the labels its pod discovery would give them. Every load is bounded in time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.harness import prometheus as prom
from bench.harness.appservers import free_port, gunicorn_args, herd_server
from bench.harness.cluster import Kubectl, eventually, install_crds
from bench.harness.load import hey

INTERVAL = 3  # the test operator's --autoscale-interval
APP = "herd_examples.flask_app:app"


@dataclass
class Rig:
    kubectl: Kubectl
    app_port: int
    prometheus: prom.Prometheus


@contextmanager
def rig(kubectl: Kubectl, tmp_path: Path) -> Iterator[Rig]:
    port = free_port()
    with herd_server(gunicorn_args(APP, port, "gthread", 2), tmp_path, port) as server:
        labels = {
            "namespace": kubectl.namespace,
            "app_kubernetes_io_instance": "web",
            "herd_dev_track": "stable",
        }
        with prom.running(
            tmp_path / "prometheus", free_port(), [(server.metrics_port, labels)]
        ) as prometheus:
            yield Rig(kubectl, port, prometheus)


def apply_webservice(rig: Rig, replicas: int, window: int, prometheus_url: str | None = None):
    url = prometheus_url or rig.prometheus.url
    rig.kubectl.apply(f"""
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: web}}
spec:
  image: web:1
  app: {APP}
  replicas: {replicas}
  metrics: {{prometheusURL: "{url}"}}
  autoscaling:
    enabled: true
    minReplicas: 1
    maxReplicas: 6
    targetRPMPerReplica: 300
    maxErrorRate: 0.05
    scaleDownStabilizationSeconds: {window}
""")
    rig.kubectl.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=60s")


def autoscaling(rig: Rig) -> tuple[int, dict, dict]:
    ws = rig.kubectl.get("webservice", "web")
    scaling = next(
        (c for c in ws["status"].get("conditions", []) if c["type"] == "ScalingActive"), {}
    )
    return ws["spec"]["replicas"], ws["status"].get("autoscaling", {}), scaling


def rpm(rig: Rig) -> float:
    result = rig.prometheus.query(
        '60 * sum(rate(http_requests_total{app_kubernetes_io_instance="web"}[1m]))'
    )
    return float(result[0]["value"][1]) if result else 0.0


def error_rate(rig: Rig) -> float:
    result = rig.prometheus.query(
        'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
    )
    return float(result[0]["value"][1]) if result else 0.0


def test_scales_out_soon_after_crossing_the_target_and_in_only_after_the_window(
    herd_operator, kubectl: Kubectl, tmp_path
):
    window = 20
    with rig(kubectl, tmp_path) as r:
        apply_webservice(r, replicas=1, window=window)
        # ~2400 RPM: 8 replicas' worth, so max (6) is reached, and after the load stops the
        # 1m rate falls below 6 replicas' worth (1500) in about 25 s rather than a minute.
        # Longer than it takes: stopped once max is seen.
        generator = hey(r.app_port, "/", seconds=90, rate_per_worker=20, workers=2)
        try:
            crossed = eventually(
                lambda: rpm(r) > 300 * 1.1 and time.monotonic(),
                timeout=30,
                what="the load crossing the per-replica target in Prometheus",
            )
            eventually(lambda: autoscaling(r)[0] > 1, timeout=30, interval=0.5, what="scale-out")
            assert time.monotonic() - crossed <= 30
            eventually(lambda: autoscaling(r)[0] == 6, timeout=40, what="scale-out to max (6)")
            assert r.kubectl.get("deployment", "web")["spec"]["replicas"] in (4, 5, 6)
            # What a user sees with `kubectl get ws web -o yaml` while it scales.
            status = yaml.safe_load(r.kubectl.run("get", "ws", "web", "-o", "yaml").stdout)[
                "status"
            ]
            shown = status["autoscaling"]
            assert {"currentRPM", "errorRate", "desiredReplicas", "lastScaleTime", "reason"} <= set(
                shown
            ), shown
            assert shown["currentRPM"] > 300 and shown["desiredReplicas"] == 6, shown
            scaling = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
            assert scaling["status"] == "True" and scaling["reason"] and scaling["message"]
            assert scaling["observedGeneration"] >= 1
        finally:
            generator.kill()  # seen at max: the rest of the load would only delay scale-in
            generator.wait(timeout=10)

        # Load gone: the recommendation falls as the 1m rate decays; scale-in must wait out
        # the stabilization window after the first lower recommendation.
        stabilizing = eventually(
            lambda: autoscaling(r)[1].get("reason") == "Stabilizing" and time.monotonic(),
            timeout=120,
            what="a lower recommendation",
        )
        assert autoscaling(r)[0] == 6
        eventually(lambda: autoscaling(r)[0] < 6, timeout=120, what="scale-in")
        assert time.monotonic() - stabilizing >= window - INTERVAL - 1
        events = json.loads(r.kubectl.run("get", "events", "-o", "json").stdout)["items"]
        assert sum(e["reason"] == "Scaled" for e in events) >= 2


def test_errors_block_scale_in(herd_operator, kubectl: Kubectl, tmp_path):
    with rig(kubectl, tmp_path) as r:
        generator = hey(r.app_port, "/fail?rate=0.5", seconds=40, rate_per_worker=2, workers=2)
        try:
            # The failures must be visible before the first decision: with no stabilization
            # window, a decision on traffic alone would scale in at once.
            eventually(lambda: error_rate(r) > 0.2, timeout=30, what="5xx visible in Prometheus")
            apply_webservice(r, replicas=4, window=0)
            status = eventually(
                lambda: (s := autoscaling(r))[1].get("reason") == "ErrorsBlockScaleIn" and s,
                timeout=40,
                what="the error-rate guard",
            )
            assert status[0] == 4 and status[1]["errorRate"] > 0.05
            assert status[2]["status"] == "True"
            time.sleep(3 * INTERVAL)
            replicas, scaling, _ = autoscaling(r)
            assert replicas == 4, scaling  # ~240 RPM alone would want 1 replica
        finally:
            generator.kill()
            generator.wait(timeout=10)


def test_prometheus_down_holds_replicas_and_says_so(herd_operator, kubectl: Kubectl, tmp_path):
    with rig(kubectl, tmp_path) as r:
        apply_webservice(r, replicas=3, window=300)
        # No request yet means no series at all: NoData, which holds replicas too.
        eventually(
            lambda: autoscaling(r)[2].get("reason") == "NoData",
            timeout=30,
            what="ScalingActive=False (NoData) before any request",
        )
        hey(r.app_port, "/", seconds=5, rate_per_worker=5, workers=1).wait(timeout=30)
        eventually(
            lambda: autoscaling(r)[2].get("status") == "True",
            timeout=30,
            what="ScalingActive=True once there are metrics",
        )
        r.prometheus.stop()
        replicas, scaling, condition = eventually(
            lambda: (s := autoscaling(r))[2].get("status") == "False" and s,
            timeout=40,
            what="ScalingActive=False once Prometheus is gone",
        )
        assert condition["reason"] == "PrometheusUnavailable"
        assert "holding" in condition["message"]
        time.sleep(2 * INTERVAL)
        assert autoscaling(r)[0] == replicas


def test_keda_engine_creates_a_scaled_object_instead(herd_operator, kubectl: Kubectl):
    install_crds(kubectl, str(kubectl.binary.parent / "keda-crds.yaml"), "scaledobjects.keda.sh")
    manifest = """
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: web}}
spec:
  image: web:1
  app: app.main:app
  autoscaling: {{enabled: true, engine: {engine}, maxReplicas: 7, targetRPMPerReplica: 900}}
"""
    kubectl.apply(manifest.format(engine="keda"))
    scaled = eventually(
        lambda: kubectl.exists("scaledobject", "web") and kubectl.get("scaledobject", "web"),
        timeout=30,
        what="ScaledObject",
    )
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "WebService"
    assert scaled["spec"]["maxReplicaCount"] == 7
    assert scaled["spec"]["triggers"][0]["metadata"]["threshold"] == "900"
    assert scaled["metadata"]["ownerReferences"][0]["kind"] == "WebService"
    time.sleep(2 * INTERVAL)  # the built-in loop must stay out of it
    assert "autoscaling" not in kubectl.get("webservice", "web")["status"]

    kubectl.apply(manifest.format(engine="builtin"))
    eventually(
        lambda: not kubectl.exists("scaledobject", "web"),
        timeout=30,
        what="ScaledObject removed with engine builtin",
    )
