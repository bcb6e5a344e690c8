"""Any Python image (spec.runtime: inject): images with only Debian's Python, a framework and
the app (apps/examples/Dockerfile.plain; no herd-runtime, no gunicorn, no uvicorn) run under
Herd on the real node, tuned, behind the ingress, scraped by the cluster's Prometheus; an image
that cannot run the runtime is Degraded with the reason naming its Python."""

from __future__ import annotations

import json
import time

import pytest

from bench.harness import cluster as local
from bench.harness import prometheus
from bench.harness.cluster import eventually
from tests.integration.real.test_traffic import pods_on_the_real_node, wait_ready
from tests.integration.real.workloads import host, webservice
from tests.support import real_node

PLAIN = {
    "wsgi": ("ghcr.io/herd-dev/plain-flask:0.1.0", "herd_examples.flask_app:app", "gthread"),
    "asgi": ("ghcr.io/herd-dev/plain-fastapi:0.1.0", "herd_examples.fastapi_app:app", "uvicorn"),
}
REQUESTS = 60


def injected(namespace: str, image: str, app: str = "herd_examples.flask_app:app", **spec) -> str:
    body = json.loads(webservice(namespace, image, replicas=1))
    body["spec"].update(runtime="inject", app=app, **spec)
    return json.dumps(body)


def prometheus_value(promql: str) -> float | None:
    """The first value the cluster's Prometheus answers `promql` with, if any."""
    url = (local.STATE / "prometheus-url").read_text().strip()
    result = prometheus.query(url, promql)
    return float(result[0]["value"][1]) if result else None


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_an_image_without_herd_runtime_serves_tuned_and_scraped(herd_operator, on_node, interface):
    kubectl = on_node
    image, app, worker_class = PLAIN[interface]
    server = {"workload": "io", "workers": 2}
    kubectl.apply(injected(kubectl.namespace, image, app, interface=interface, server=server))
    wait_ready(kubectl)

    (pod,) = pods_on_the_real_node(kubectl)
    copied, checked = pod["status"]["initContainerStatuses"]
    for init in (copied, checked):
        assert init["state"]["terminated"]["exitCode"] == 0, init
    app_container = pod["spec"]["containers"][0]
    assert app_container["command"] == ["python3", "-m", "herd_runtime"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    reported = kubectl.get("webservice", "web")["status"]["server"]
    assert (reported["workerClass"], reported["workers"]) == (worker_class, 2), reported

    eventually(
        lambda: real_node.get(host(kubectl.namespace)) == 200,
        timeout=30,
        what="the ingress answering for the host",
    )
    answered = real_node.statuses(host(kubectl.namespace), REQUESTS)
    assert answered == {200: REQUESTS}, answered
    assert real_node.served(kubectl.get("pod", pod["metadata"]["name"])) >= REQUESTS

    # The labels the app metric source's queries select by (herd.metric_sources).
    promql = (
        f'sum(http_requests_total{{namespace="{kubectl.namespace}", '
        f'app_kubernetes_io_instance="web", route="/"}})'
    )
    scraped = eventually(
        lambda: (v := prometheus_value(promql)) is not None and v >= REQUESTS and v,
        timeout=60,
        interval=2,
        what="Prometheus scraping the pod's http_requests_total",
    )
    print(f"{interface}: {image} served {REQUESTS} through the ingress; Prometheus saw {scraped}")


@pytest.mark.parametrize(
    ("image", "words"),
    [
        pytest.param(
            "ghcr.io/herd-dev/python3.9:bullseye",
            "the image's Python is CPython 3.9.",
            id="python-3.9",
        ),
        pytest.param(
            "registry.k8s.io/pause:3.10", "the image has no python3 on its PATH", id="no-python"
        ),
    ],
)
def test_an_image_that_cannot_run_the_runtime_is_degraded_naming_its_python(
    herd_operator, on_node, image, words
):
    kubectl = on_node
    kubectl.apply(injected(kubectl.namespace, image))

    seen: dict[str, float] = {}

    def check_failed() -> bool:
        for pod in kubectl.items("pods", "app.kubernetes.io/instance=web"):
            for init in pod["status"].get("initContainerStatuses", []):
                runs = (init["state"], init.get("lastState", {}))
                if init["name"] == "herd-runtime-check" and any(
                    run.get("terminated", {}).get("exitCode") for run in runs
                ):
                    return True
        return False

    def degraded() -> dict | None:
        if "failed" not in seen and check_failed():
            seen["failed"] = time.monotonic()
        ws = kubectl.get("webservice", "web")
        found = next(
            (c for c in ws.get("status", {}).get("conditions", []) if c["type"] == "Degraded"), {}
        )
        return found if found.get("reason") == "RuntimeIncompatible" else None

    condition = eventually(degraded, timeout=90, interval=0.5, what="Degraded RuntimeIncompatible")
    reported = time.monotonic()
    assert words in condition["message"], condition
    assert "herd-runtime needs" in condition["message"], condition
    # One reconcile, woken by the pod's own event: no timer, no deadline, in between.
    assert reported - seen.get("failed", reported) <= 5, seen
    (pod,) = kubectl.items("pods", "app.kubernetes.io/instance=web")
    assert pod["status"]["containerStatuses"][0].get("restartCount") == 0, pod["status"]
    assert pod["status"]["containerStatuses"][0]["state"].get("waiting"), "the app never ran"
    events = kubectl.items("events")
    assert any(e.get("reason") == "RuntimeIncompatible" for e in events), "no such Event"
