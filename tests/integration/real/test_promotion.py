"""A promotion to pods that never become Ready, on the real node: the canary keeps its weight
while the stable Deployment's new pods fail, no request fails, and the promotion deadline rolls
back to the version that served."""

from __future__ import annotations

import json
import time

from herd_examples.workloads import FAILURE_RATE_ENV

from bench.harness.cluster import Kubectl, eventually
from tests.integration.real.test_header_routing import REQUESTS, answered
from tests.integration.real.test_traffic import rollout_reaches, wait_ready
from tests.integration.real.workloads import FLASK, FLASK_NEXT, webservice
from tests.support import real_node
from tests.support.rollout import herd, image_of

DEADLINE = 30  # promotionDeadlineSeconds' minimum
CANARY = {
    "steps": [{"setWeight": 50}, {"pause": {}}],
    "analysis": {"intervalSeconds": 5, "minRequests": 10, "maxErrorRate": 0.05},
    "promotionDeadlineSeconds": DEADLINE,
}
#: The app reads its failure rate once, at start, from this ConfigMap: a value outside 0..1
#: stops it from starting. Changed once the canary runs, it breaks only pods started later,
#: as a configuration change does that the running pods have not read yet.
SETTINGS = "web-settings"
#: Of REQUESTS at weight 50 (10 expected), fewer than this on the canary has a chance of 0.13 %
#: (binomial).
LEAST_ON_THE_CANARY = 4
ENV = {FAILURE_RATE_ENV: {"configMapKeyRef": {"name": SETTINGS, "key": "failureRate"}}}


def settings(kubectl: Kubectl, failure_rate: str) -> None:
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": SETTINGS},
                "data": {"failureRate": failure_rate},
            }
        )
    )


def test_a_promotion_to_unready_pods_keeps_the_canary_weight_then_rolls_back(
    herd_operator, on_node
):
    kubectl = on_node
    settings(kubectl, "0")
    kubectl.apply(webservice(kubectl.namespace, env=ENV, canary=CANARY))
    wait_ready(kubectl)
    kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT, env=ENV, canary=CANARY))
    rollout_reaches(kubectl, "Paused", weight=50, timeout=90)
    eventually(
        lambda: answered(kubectl)["canary"] > 0,
        timeout=20,
        interval=1,
        what="Traefik sending the canary its weight",
    )

    settings(kubectl, "2")  # pods started from now on fail at start
    herd(kubectl, "promote")
    promoted = time.monotonic()
    rollout_reaches(kubectl, "Promoting", timeout=30)
    eventually(
        lambda: len(kubectl.items("pods", "herd.dev/track=stable")) == 4,
        timeout=30,
        what="the new stable pods created beside the old ones",
    )
    # The new stable pods never become Ready: the canary keeps its share, the old stable pods
    # the rest, and no request fails.
    during = answered(kubectl)
    state = rollout_reaches(kubectl, "Promoting", "RolledBack", timeout=5)
    assert (state["phase"], state["weight"]) == ("Promoting", 50), state
    assert during["canary"] >= LEAST_ON_THE_CANARY, during
    assert image_of(kubectl, "web") == FLASK_NEXT  # the stable Deployment was promoted

    rolled = rollout_reaches(kubectl, "RolledBack", timeout=DEADLINE + 30)
    took = time.monotonic() - promoted
    assert rolled["weight"] == 0 and rolled["message"].startswith("PromotionDeadlineExceeded")
    # The deadline, plus up to one resync of the rollout (5 s while it moves) and the status read.
    assert DEADLINE <= took <= DEADLINE + 15, f"rolled back {took:.1f} s after promote"
    assert image_of(kubectl, "web") == FLASK  # back to the version that served
    events = json.loads(kubectl.run("get", "events", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "PromotionDeadlineExceeded" for e in events)
    ws = kubectl.get("webservice", "web")
    degraded = next(c for c in ws["status"]["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack"), degraded
    assert "PromotionDeadlineExceeded" in degraded["message"], degraded
    eventually(
        lambda: not real_node.running_pods(kubectl, "herd.dev/track=canary"),
        timeout=60,
        what="the canary pods gone",
    )
    eventually(
        lambda: answered(kubectl)["stable"] == REQUESTS,
        timeout=30,
        interval=1,
        what="every request on the stable version",
    )
