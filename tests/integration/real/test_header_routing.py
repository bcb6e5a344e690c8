"""Header routes through the real Traefik, for both routers: requests carrying the header reach
the canary whatever its weight, the others are split by weight, counted by the pods
themselves; the rollout's end takes the route away. An A/B test judges the matching requests
alone, from what Prometheus scraped, and promotes."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.harness.cluster import Kubectl, eventually
from tests.integration.real.test_traffic import rollout_reaches, wait_ready
from tests.integration.real.workloads import FLASK, FLASK_NEXT, host, webservice
from tests.support import real_node
from tests.support.rollout import canary, herd, image_of

PINNED = {"X-Canary": "on"}
STEPS = {
    "steps": [
        {"setHeaderRoute": {"name": "X-Canary", "value": "on"}},
        {"setWeight": 10},
        {"pause": {}},
    ],
    "analysis": {"intervalSeconds": 5},
}
REQUESTS = 20
#: Of REQUESTS unpinned ones at weight 10 (2 expected), more than this on the canary has a
#: chance below 0.3 % (binomial).
MOST_ON_THE_CANARY_UNPINNED = 6


def answered(kubectl: Kubectl, headers: dict[str, str] | None = None) -> Counter[str]:
    """How many of REQUESTS sent now (with `headers`) each track's pods answered."""
    before = real_node.served_by_track(kubectl, "web")
    sent = real_node.statuses(host(kubectl.namespace), REQUESTS, headers=headers)
    assert sent == {200: REQUESTS}, sent
    after = real_node.served_by_track(kubectl, "web")
    counts = Counter({track: after[track] - before[track] for track in ("stable", "canary")})
    assert counts.total() == REQUESTS, (before, after)
    return counts


def header_route_rendered(kubectl: Kubectl, router: str) -> None:
    if router == "gateway":
        pinned = kubectl.get("httproute", "web")["spec"]["rules"][0]
        assert pinned["matches"][0]["headers"] == [
            {"type": "Exact", "name": "X-Canary", "value": "on"}
        ], pinned
        assert [b["name"] for b in pinned["backendRefs"]] == ["web-canary"], pinned
        return
    notes = kubectl.get("ingress", "web-canary")["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert notes[prefix + "canary-by-header"] == "X-Canary", notes
    assert notes[prefix + "canary-by-header-value"] == "on", notes


@pytest.mark.parametrize(
    ("router", "ending", "phase", "serving"),
    [
        ("nginx", ("promote", "--full"), "Succeeded", FLASK_NEXT),
        ("gateway", ("abort",), "Aborted", FLASK),
    ],
)
def test_requests_with_the_header_reach_the_canary_until_the_rollout_ends(
    herd_operator, on_node, router, ending, phase, serving
):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, router=router, canary=STEPS))
    wait_ready(kubectl)
    eventually(
        lambda: real_node.get(host(kubectl.namespace)) == 200,
        timeout=30,
        what="the ingress answering for the host",
    )

    kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT, router=router, canary=STEPS))
    rollout_reaches(kubectl, "Paused", weight=10, timeout=90)
    assert canary(kubectl)["match"] == {"kind": "header", "name": "X-Canary", "value": "on"}
    header_route_rendered(kubectl, router)
    # Traefik reloads on the router objects' change a moment after Herd writes them.
    eventually(
        lambda: answered(kubectl, PINNED)["canary"] == REQUESTS,
        timeout=20,
        interval=1,
        what="every request with the header on the canary",
    )
    unpinned = answered(kubectl)
    assert unpinned["canary"] <= MOST_ON_THE_CANARY_UNPINNED, unpinned
    assert answered(kubectl, {"X-Canary": "off"})["canary"] <= MOST_ON_THE_CANARY_UNPINNED

    herd(kubectl, *ending)
    rollout_reaches(kubectl, phase, timeout=120)
    assert "match" not in canary(kubectl), canary(kubectl)
    eventually(
        lambda: not real_node.running_pods(kubectl, "herd.dev/track=canary"),
        timeout=60,
        what="the canary pods gone",
    )
    assert not kubectl.exists("ingress", "web-canary")
    if router == "gateway":
        assert len(kubectl.get("httproute", "web")["spec"]["rules"]) == 1
    eventually(
        lambda: answered(kubectl, PINNED)["stable"] == REQUESTS,
        timeout=30,
        interval=1,
        what="requests with the header back on the stable version",
    )
    assert image_of(kubectl, "web") == serving


AB_TEST = {
    "abTest": {"match": {"header": {"name": "X-Canary", "value": "on"}}, "analyses": 2},
    "analysis": {"intervalSeconds": 5, "minRequests": 10, "maxErrorRate": 0.05},
}


def only_stable_answers_unpinned(kubectl: Kubectl) -> bool:
    """REQUESTS without the header, all on the stable pods (the canary's count moves with the
    pinned load meanwhile)."""
    before = real_node.served_by_track(kubectl, "web")
    sent = real_node.statuses(host(kubectl.namespace), REQUESTS)
    assert sent == {200: REQUESTS}, sent
    after = real_node.served_by_track(kubectl, "web")
    return after["stable"] - before["stable"] == REQUESTS


@pytest.mark.parametrize("router", ["nginx", "gateway"])
def test_an_ab_test_is_promoted_on_the_matching_requests_alone(herd_operator, on_node, router):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, router=router, canary=AB_TEST))
    wait_ready(kubectl)
    with real_node.Load(host(kubectl.namespace), seconds=150, rate=10, headers=PINNED) as load:
        kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT, router=router, canary=AB_TEST))
        eventually(
            lambda: canary(kubectl).get("stepIndex") == 1,
            timeout=90,
            what="the A/B test's match set",
        )
        assert canary(kubectl)["weight"] == 0
        header_route_rendered(kubectl, router)
        eventually(
            lambda: only_stable_answers_unpinned(kubectl),
            timeout=20,
            interval=1,
            what="requests without the header on the stable pods only",
        )
        done = rollout_reaches(kubectl, "Succeeded", "RolledBack", "Aborted", timeout=120)
    assert done["phase"] == "Succeeded", done
    assert done["lastAnalysis"]["verdict"] == "pass", done
    assert image_of(kubectl, "web") == FLASK_NEXT
    assert load.total() > 100 and load.failed() == 0, load.counts
