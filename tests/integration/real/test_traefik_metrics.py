"""`metrics.source: traefik` against the real Traefik (issue 17, item 3): the PromQL of
herd.metric_sources.TraefikSource selects the series Traefik really names after a WebService's
Ingress or HTTPRoute, one track each, as the cluster's Prometheus scrapes them; the canary
analysis reads them to a verdict."""

from __future__ import annotations

import json
import time

import pytest

from bench.harness.cluster import eventually
from herd import metric_sources, model
from herd.metric_sources import SOURCES
from tests.integration.real.test_bring_your_image import prometheus_value
from tests.integration.real.test_traffic import rollout_reaches, wait_ready
from tests.integration.real.workloads import FLASK, FLASK_NEXT, host, webservice
from tests.support import real_node

LOAD_SECONDS, RATE = 10, 20  # spread over several of Prometheus's 2 s scrapes
ANALYSIS_SECONDS = 40  # a few of the 5 s analyses, each over the scrapes of its interval
WINDOW = "3m"  # longer than the whole test: every request it sent falls in the window
HELD = {
    "steps": [{"setWeight": 50}, {"pause": {}}],
    "analysis": {"intervalSeconds": 5, "minRequests": 10, "maxErrorRate": 0.05},
}
#: Prometheus's `increase()` extrapolates to the window's edges: the counts are near, not exact.
TOLERANCE = 0.15


def traefik_webservice(namespace: str, router: str, image: str = FLASK) -> str:
    body = json.loads(webservice(namespace, image, replicas=1, router=router, canary=HELD))
    body["spec"]["metrics"] = {"source": "traefik"}
    return json.dumps(body)


@pytest.mark.parametrize("router", ["nginx", "gateway"])
def test_traefiks_series_of_each_track_count_what_its_pods_served(herd_operator, on_node, router):
    kubectl = on_node
    ns = kubectl.namespace
    kubectl.apply(traefik_webservice(ns, router))
    wait_ready(kubectl)
    kubectl.apply(traefik_webservice(ns, router, FLASK_NEXT))
    rollout_reaches(kubectl, "Progressing", "Paused", weight=50, timeout=120)
    # Traefik applies a route change a moment after Herd writes it: both tracks answer first.
    eventually(
        lambda: (
            real_node.statuses(host(ns), 20) == {200: 20}
            and len(by_track := real_node.served_by_track(kubectl, "web")) == 2
            and min(by_track.values()) > 0
        ),
        timeout=60,
        what="Traefik sending requests to both tracks",
    )

    source = SOURCES["traefik"]
    ws = model.parse(kubectl.get("webservice", "web"))  # the operator's own path to a Target
    targets = {track: metric_sources.target(ws, track, WINDOW) for track in ("stable", "canary")}

    def counts() -> dict[str, float | None]:
        return {t: prometheus_value(source.request_count(q)) for t, q in targets.items()}

    # Traefik makes a series at its first request: Prometheus must hold a sample of each
    # before the measured load, or `increase()` cannot see the requests before that sample.
    eventually(
        lambda: None not in counts().values(),
        timeout=30,
        what="Prometheus holding each track's series",
    )
    before = real_node.served_by_track(kubectl, "web")
    with real_node.Load(host(ns), seconds=LOAD_SECONDS, rate=RATE) as load:
        time.sleep(LOAD_SECONDS)
    assert load.failed() == 0, load.counts
    after = real_node.served_by_track(kubectl, "web")
    served = {track: after[track] - before[track] for track in targets}
    assert sum(served.values()) == load.total() > 0, (served, load.counts)

    last: list[dict] = [{}]

    def counted() -> dict[str, float | None] | None:
        last[0] = counts()
        seen = last[0]
        if all(v is not None and v >= served[t] * (1 - TOLERANCE) for t, v in seen.items()):
            return seen
        return None

    seen = eventually(
        counted, timeout=60, interval=3, what=f"Prometheus counting both tracks of {served}"
    )
    print(f"{router}: pods served {served} of the load, {dict(after)} in all; Traefik's {seen}")
    for track, value in seen.items():
        # Not above all the track's pods ever answered (warm-up included, which the window
        # holds too): a selector matching both tracks' services would count about twice that.
        assert value <= after[track] * (1 + TOLERANCE), (track, seen, dict(after))

    for query in (source.error_rate, source.p99_latency_seconds, source.requests_per_minute):
        promql = query(targets["canary"])
        value = prometheus_value(promql)
        assert value is not None and value == value, promql  # a number, not NaN
    assert prometheus_value(source.error_rate(targets["canary"])) == 0

    # The operator's own analysis reads the same series to a verdict, while requests flow.
    with real_node.Load(host(ns), seconds=ANALYSIS_SECONDS, rate=RATE):
        analysed = eventually(
            lambda: (
                (a := kubectl.get("webservice", "web")["status"]["canary"].get("lastAnalysis"))
                and a.get("requests", 0) > 0
                and a
            ),
            timeout=ANALYSIS_SECONDS,
            what="an analysis with the canary's requests counted",
        )
    assert analysed["verdict"] == "pass", analysed
