"""Real pods behind the real ingress: requests sent to Traefik reach the app, and during a canary
each track answers its step's share, counted by the pods themselves."""

from __future__ import annotations

import pytest

from bench.harness.cluster import Kubectl, eventually
from tests.integration.real.workloads import FLASK_NEXT, host, webservice
from tests.support import real_node
from tests.support.rollout import canary, herd, image_of

REQUESTS = 400
TOLERANCE = 5  # percentage points

MANUAL_STEPS = {
    "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
    "analysis": {"intervalSeconds": 5},
}


def rollout_reaches(
    kubectl: Kubectl, *phases: str, timeout: float, weight: int | None = None
) -> dict:
    """The canary status once its phase is one of `phases` (at `weight`, if given); on a
    timeout, the error shows the last status seen."""
    seen: list[dict] = [{}]

    def reached() -> dict | None:
        seen[0] = canary(kubectl)
        if seen[0].get("phase") in phases and weight in (None, seen[0].get("weight")):
            return seen[0]
        return None

    try:
        return eventually(reached, timeout=timeout, what=f"phase {'/'.join(phases)}")
    except AssertionError as error:
        raise AssertionError(f"{error}; the last status: {seen[0]}") from None


def wait_ready(kubectl: Kubectl) -> None:
    kubectl.run("wait", "--for", "condition=Ready", "webservice/web", "--timeout=120s")


def pods_on_the_real_node(kubectl: Kubectl) -> list[dict]:
    pods = kubectl.items("pods", "app.kubernetes.io/instance=web")
    assert pods and all(p["spec"].get("nodeName") == real_node.NODE for p in pods), [
        (p["metadata"]["name"], p["spec"].get("nodeName")) for p in pods
    ]
    return pods


def canary_share(kubectl: Kubectl) -> float:
    """Percent of REQUESTS sent through the ingress now that the canary pods answered."""
    before = real_node.served_by_track(kubectl, "web")
    answered = real_node.statuses(host(kubectl.namespace), REQUESTS)
    assert answered == {200: REQUESTS}, answered
    after = real_node.served_by_track(kubectl, "web")
    stable, canary_ = after["stable"] - before["stable"], after["canary"] - before["canary"]
    assert stable + canary_ == REQUESTS, (before, after)
    return 100 * canary_ / REQUESTS


def route_weights(kubectl: Kubectl, router: str) -> dict[str, int]:
    """Where the router objects Herd wrote send the requests: Service name -> weight."""
    if router == "gateway":
        assert not kubectl.exists("ingress", "web")
        backends = kubectl.get("httproute", "web")["spec"]["rules"][0]["backendRefs"]
        return {b["name"]: b["weight"] for b in backends}
    notes = kubectl.get("ingress", "web-canary")["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary"] == "true", notes
    weight = int(notes["nginx.ingress.kubernetes.io/canary-weight"])
    return {"web": 100 - weight, "web-canary": weight}


@pytest.mark.parametrize("router", ["nginx", "gateway"])
def test_each_step_sends_its_weight_to_the_canary(herd_operator, on_node, router):
    kubectl = on_node
    kubectl.apply(webservice(kubectl.namespace, router=router, canary=MANUAL_STEPS))
    wait_ready(kubectl)
    for pod in pods_on_the_real_node(kubectl):
        statuses = pod["status"]["containerStatuses"]
        assert all(s["ready"] and s["restartCount"] == 0 for s in statuses), statuses
    eventually(
        lambda: real_node.get(host(kubectl.namespace)) == 200,
        timeout=30,
        what="the ingress answering for the host",
    )
    assert canary_share(kubectl) == 0

    kubectl.apply(webservice(kubectl.namespace, FLASK_NEXT, router=router, canary=MANUAL_STEPS))
    measured = {}
    generation = kubectl.get("webservice", "web")["metadata"]["generation"]
    for weight in (20, 50):
        rollout_reaches(kubectl, "Paused", weight=weight, timeout=90)
        assert route_weights(kubectl, router) == {"web": 100 - weight, "web-canary": weight}
        ws = kubectl.get("webservice", "web")
        progressing = next(c for c in ws["status"]["conditions"] if c["type"] == "Progressing")
        assert progressing["reason"] == "CanaryPaused", progressing
        # Traefik reloads on the router objects' change a moment after Herd writes them.
        share = eventually(
            lambda w=weight: abs((s := canary_share(kubectl)) - w) <= TOLERANCE and s,
            timeout=20,
            interval=1,
            what=f"{weight} % of the requests on the canary",
        )
        measured[weight] = share
        herd(kubectl, "promote")
    rollout_reaches(kubectl, "Succeeded", timeout=90)
    assert image_of(kubectl, "web") == FLASK_NEXT
    eventually(
        lambda: not kubectl.exists("deployment", "web-canary"),
        timeout=30,
        what="the canary Deployment removed",
    )
    assert not kubectl.exists("ingress", "web-canary")
    # The intents went to the status: the spec (and a GitOps diff) never changed.
    assert kubectl.get("webservice", "web")["metadata"]["generation"] == generation
    print(f"{router}: canary share per step weight {measured}")
