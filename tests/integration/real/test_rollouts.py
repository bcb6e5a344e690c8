"""Rollouts decided by real data: Prometheus scrapes the real pods, the canary analysis reads
it, and load through the real ingress sees what users would."""

from __future__ import annotations

import json
import time

from herd_examples.workloads import FAILURE_RATE_ENV

from bench.harness.cluster import eventually
from tests.integration.real.test_traffic import rollout_reaches, wait_ready
from tests.integration.real.workloads import FLASK, FLASK_NEXT, host, webservice
from tests.support import real_node
from tests.support.rollout import image_of

ANALYSIS = {"intervalSeconds": 5, "minRequests": 10, "maxErrorRate": 0.05, "failureLimit": 2}
TIMED_STEPS = {
    "steps": [{"setWeight": 50}, {"pause": {"duration": 10}}],
    "analysis": ANALYSIS,
}


def test_a_canary_answering_5xx_is_rolled_back_by_its_scraped_metrics(herd_operator, on_node):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, canary=TIMED_STEPS))
    wait_ready(kubectl)
    broken = webservice(
        kubectl.namespace, FLASK_NEXT, env={FAILURE_RATE_ENV: "0.5"}, canary=TIMED_STEPS
    )
    with real_node.Load(host(kubectl.namespace), seconds=120, rate=20) as load:
        kubectl.apply(broken)
        rollout_reaches(kubectl, "Progressing", weight=50, timeout=90)
        shifted = time.monotonic()
        rolled = rollout_reaches(kubectl, "RolledBack", timeout=100)
        took = time.monotonic() - shifted
    # docs/canary.md's bound: failureLimit failed checks one interval apart, one interval for
    # the first check to see traffic, and here one more for the scrapes to reach the window.
    limit = ANALYSIS["intervalSeconds"] * (ANALYSIS["failureLimit"] + 2)
    assert took <= limit, f"rolled back {took:.1f} s after weight 50, limit {limit} s"
    assert rolled["failedChecks"] == ANALYSIS["failureLimit"] and rolled["weight"] == 0, rolled
    assert rolled["lastAnalysis"]["verdict"] == "fail", rolled
    assert rolled["lastAnalysis"]["errorRate"] > ANALYSIS["maxErrorRate"], rolled
    assert image_of(kubectl, "web") == FLASK  # the stable version served throughout
    ws = kubectl.get("webservice", "web")
    degraded = next(c for c in ws["status"]["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack"), degraded
    events = json.loads(kubectl.run("get", "events", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "RolledBack" for e in events)
    assert load.failed() > 0, load.counts  # the canary did answer 5xx while it had traffic
    eventually(
        lambda: not real_node.running_pods(kubectl, "herd.dev/track=canary"),
        timeout=60,
        what="the canary pods gone",
    )
    # Once Traefik has applied the rollback (it reloads a moment after Herd's writes), the
    # stable version answers everything.
    eventually(
        lambda: real_node.statuses(host(kubectl.namespace), 20) == {200: 20},
        timeout=30,
        what="no request reaching the rolled-back canary",
    )
    assert real_node.statuses(host(kubectl.namespace), 100) == {200: 100}


def test_a_healthy_canary_is_promoted_under_load_without_a_failed_request(herd_operator, on_node):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, canary=TIMED_STEPS))
    wait_ready(kubectl)
    with real_node.Load(host(kubectl.namespace), seconds=150, rate=20) as load:
        kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT, canary=TIMED_STEPS))
        done = rollout_reaches(kubectl, "Succeeded", "RolledBack", timeout=120)
        assert done["phase"] == "Succeeded", done
        # The old stable pods drain while the load goes on.
        eventually(
            lambda: len(real_node.running_pods(kubectl, "app.kubernetes.io/instance=web")) == 2,
            timeout=60,
            what="only the promoted pods left",
        )
    assert load.total() > 200 and load.failed() == 0, load.counts


def test_a_rolling_update_under_load_fails_no_request(herd_operator, on_node):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace))
    wait_ready(kubectl)
    with real_node.Load(host(kubectl.namespace), seconds=120, rate=20) as load:
        kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT))
        eventually(
            lambda: (
                {
                    p["spec"]["containers"][0]["image"]
                    for p in real_node.running_pods(kubectl, "app.kubernetes.io/instance=web")
                }
                == {FLASK_NEXT}
            ),
            timeout=90,
            what="every pod on the new image",
        )
        kubectl.run("rollout", "status", "deployment/web", "--timeout=60s")
        eventually(
            lambda: len(real_node.running_pods(kubectl, "app.kubernetes.io/instance=web")) == 2,
            timeout=60,
            what="the old pods gone",
        )
    assert load.total() > 100 and load.failed() == 0, load.counts
