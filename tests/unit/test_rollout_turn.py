"""A canary rollout through `reconcile`, pass by pass (the canary tick is a reconcile pass),
against an in-memory API and a stand-in Prometheus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from herd.kinds import Ref
from herd.observation import Observation
from herd.reconcile import Outcome, reconcile
from herd.rollout.machine import WAITING_FOR_PROMOTE
from herd.settings import Settings
from tests.support.fake_kube import FakeKube, FakePrometheus

T0 = 1_700_000_000.0
NS, NAME, CANARY = "ns", "web", "web-canary"
WS = Ref("WebService", NS, NAME)
STABLE_DEPLOYMENT = Ref("Deployment", NS, NAME)
STABLE_SERVICE = Ref("Service", NS, NAME)  # where the operator keeps the rollout state
CANARY_DEPLOYMENT = Ref("Deployment", NS, CANARY)
CANARY_SERVICE = Ref("Service", NS, CANARY)
CANARY_INGRESS = Ref("Ingress", NS, CANARY)
CANARY_OBJECTS = [CANARY_DEPLOYMENT, CANARY_SERVICE, CANARY_INGRESS]
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
INTERVAL = 30  # the analysis default

PAUSE_FOR_PROMOTE = [{"setWeight": 20}, {"pause": {}}]
TIMED_PAUSE = [{"setWeight": 20}, {"pause": {"duration": "60s"}}]


def webservice(steps: list[dict[str, Any]], canary: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": NAME, "namespace": NS, "uid": "u1", "generation": 1},
        "spec": {
            "image": "web:1",
            "app": "app.main:app",
            "route": {"ingress": {"host": "web.example.com"}},
            "canary": canary or {"steps": steps},
        },
    }


def metrics(error_rate: float) -> FakePrometheus:
    """The canary's metrics over an interval: plenty of requests, fast, `error_rate` 5xx."""
    prometheus = FakePrometheus()
    prometheus.answer("increase(", Observation("value", 500.0))
    prometheus.answer('=~"5..', Observation("value", error_rate))
    prometheus.answer("histogram_quantile", Observation("value", 0.05))
    return prometheus


HEALTHY, FAILING = 0.0, 0.2


class Rollout:
    """One WebService, its API and its Prometheus, and the clock of its passes."""

    def __init__(
        self,
        steps: list[dict[str, Any]],
        error_rate: float = HEALTHY,
        canary: dict[str, Any] | None = None,
    ):
        self.kube = FakeKube()
        self.prometheus = metrics(error_rate)
        self.now = T0
        self.kube.put(webservice(steps, canary))

    def tick(self, seconds: float = 5) -> Outcome:
        """One pass, `seconds` after the last; calls and queries are those of this pass."""
        self.now += seconds
        self.kube.reset_calls()
        self.prometheus.queries.clear()
        outcome = reconcile(self.kube, self.prometheus, Settings(), NS, NAME, self.now)
        assert self.kube.count("get", "WebService") == 1  # each pass reads it once
        return outcome

    def kept(self) -> dict[str, Any]:
        """The rollout state the operator keeps on the stable Service."""
        notes = self.kube.objects[STABLE_SERVICE]["metadata"].get("annotations") or {}
        return json.loads(notes.get("herd.dev/rollout", "{}"))

    @property
    def status(self) -> dict[str, Any]:
        return self.kube.objects[WS].get("status", {})

    @property
    def canary(self) -> dict[str, Any]:
        return self.status.get("canary", {})

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def image(self, ref: Ref) -> str:
        return self.kube.objects[ref]["spec"]["template"]["spec"]["containers"][0]["image"]

    def canary_writes(self) -> list[dict[str, Any]]:
        return [s["canary"] for manager, s in self.kube.status_writes if manager == "herd-canary"]

    # --- The stages every case starts from. ---

    def serve(self) -> Rollout:
        """web:1 created and rolled out: status.stableSpec written, no rollout."""
        self.tick()
        self.kube.roll_out(NAME)
        self.tick()
        assert self.status["stableSpec"]["image"] == "web:1"
        assert self.canary == {}
        return self

    def change_image(self, image: str = "web:2") -> Outcome:
        def change(ws: dict[str, Any]) -> None:
            ws["spec"]["image"] = image

        self.kube.edit(WS, change)
        assert self.kube.objects[WS]["metadata"]["generation"] == 2
        return self.tick()

    def at_weight(self) -> Rollout:
        """web:2 started as a canary, ready, at weight 20."""
        self.serve()
        self.change_image()
        self.kube.roll_out(CANARY)
        self.tick()
        assert self.canary["weight"] == 20
        return self


def test_without_a_stable_version_there_is_no_rollout():
    rollout = Rollout(PAUSE_FOR_PROMOTE)

    rollout.tick()

    assert rollout.canary_writes() == []
    assert CANARY_DEPLOYMENT not in rollout.kube.objects
    assert "stableSpec" not in rollout.status  # the Deployment has not rolled out


def test_an_idle_canary_webservice_costs_no_writes():
    rollout = Rollout(PAUSE_FOR_PROMOTE).serve()

    outcome = rollout.tick()

    assert outcome.writes == 0 and rollout.kube.writes == 0
    assert rollout.prometheus.queries == []


def test_a_new_image_starts_a_canary_beside_the_stable_version():
    rollout = Rollout(PAUSE_FOR_PROMOTE).serve()

    outcome = rollout.change_image()

    [record] = rollout.canary_writes()
    assert (record["phase"], record["weight"], record["observedGeneration"]) == (
        "Progressing",
        0,
        2,
    )
    assert rollout.canary["phase"] == "Progressing"
    assert all("canary" not in s for m, s in rollout.kube.status_writes if m == "herd")
    # The stable version is untouched; its Service takes the kept rollout state (herd.held).
    assert set(rollout.kube.written("apply")) == {
        STABLE_SERVICE,
        CANARY_DEPLOYMENT,
        CANARY_SERVICE,
    }
    assert rollout.image(CANARY_DEPLOYMENT) == "web:2"
    assert rollout.image(STABLE_DEPLOYMENT) == "web:1"
    assert rollout.kept()["phase"] == "Progressing"
    assert rollout.kube.objects[CANARY_DEPLOYMENT]["spec"]["replicas"] == 1
    assert CANARY_INGRESS not in rollout.kube.objects  # no route at weight 0
    assert "RolloutStarted" in [reason for _, reason, _ in outcome.events]
    assert rollout.condition("Progressing")["reason"] == "CanaryProgressing"
    assert rollout.status["stableSpec"]["image"] == "web:1"
    assert rollout.prometheus.queries == []


def test_a_canary_not_ready_yet_gets_no_traffic():
    rollout = Rollout(PAUSE_FOR_PROMOTE).serve()
    rollout.change_image()

    rollout.tick()

    assert rollout.canary["weight"] == 0
    assert CANARY_INGRESS not in rollout.kube.objects
    assert rollout.kube.written("apply") == [STABLE_SERVICE]  # the kept state's message


def test_a_ready_canary_gets_its_weight_on_a_canary_ingress():
    rollout = Rollout(PAUSE_FOR_PROMOTE).serve()
    rollout.change_image()
    rollout.kube.roll_out(CANARY)

    rollout.tick()

    assert (rollout.canary["weight"], rollout.canary["stepIndex"]) == (20, 1)
    ingress = rollout.kube.objects[CANARY_INGRESS]
    assert ingress["metadata"]["annotations"][WEIGHT] == "20"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == CANARY
    assert rollout.kube.written("apply") == [STABLE_SERVICE, CANARY_INGRESS]
    assert rollout.kept()["weight"] == 20
    assert rollout.prometheus.queries == []  # no traffic on the canary until this pass


@pytest.mark.parametrize(
    "error_rate, verdict, failed",
    [
        pytest.param(HEALTHY, "pass", 0, id="passing"),
        pytest.param(FAILING, "fail", 1, id="failing-once"),
    ],
)
def test_the_analysis_at_the_weight_then_a_pause_for_promote(error_rate, verdict, failed):
    rollout = Rollout(PAUSE_FOR_PROMOTE, error_rate).at_weight()

    rollout.tick(INTERVAL)

    assert len(rollout.prometheus.queries) == 3  # requests, error rate, p99
    assert all('herd_dev_track="canary"' in q for _, q in rollout.prometheus.queries)
    assert {url for url, _ in rollout.prometheus.queries} == {Settings().prometheus_url}
    assert rollout.canary["lastAnalysis"]["verdict"] == verdict
    assert rollout.canary["failedChecks"] == failed
    assert (rollout.canary["phase"], rollout.canary["pausedReason"]) == (
        "Paused",
        WAITING_FOR_PROMOTE,
    )
    assert rollout.kube.objects[CANARY_INGRESS]["metadata"]["annotations"][WEIGHT] == "20"
    assert rollout.condition("Progressing")["reason"] == "CanaryPaused"

    idle = rollout.tick(1)  # paused, no analysis due: nothing moves, nothing is written

    assert idle.writes == 0 and rollout.kube.writes == 0


def test_an_analysis_runs_only_every_interval():
    rollout = Rollout(TIMED_PAUSE).at_weight()
    rollout.tick(INTERVAL)
    assert len(rollout.prometheus.queries) == 3

    rollout.tick(INTERVAL - 10)

    assert rollout.prometheus.queries == []


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(TIMED_PAUSE, id="timed-pause"),
        pytest.param(PAUSE_FOR_PROMOTE, id="pause-for-promote"),
    ],
)
def test_failing_analyses_up_to_the_failure_limit_roll_back(steps):
    rollout = Rollout(steps, FAILING).at_weight()
    first = rollout.tick(INTERVAL)
    assert rollout.canary["failedChecks"] == 1
    assert "AnalysisFailed" in [reason for _, reason, _ in first.events]

    outcome = rollout.tick(INTERVAL)

    assert (rollout.canary["phase"], rollout.canary["weight"]) == ("RolledBack", 0)
    assert rollout.canary["failedChecks"] == 2
    assert set(rollout.kube.written("delete")) == set(CANARY_OBJECTS)
    assert not set(CANARY_OBJECTS) & set(rollout.kube.objects)
    assert rollout.image(STABLE_DEPLOYMENT) == "web:1"
    degraded = rollout.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
    assert ("Warning", "RolledBack", rollout.canary["message"]) in outcome.events
    assert rollout.status["stableSpec"]["image"] == "web:1"

    after = rollout.tick(INTERVAL)  # the rejected revision is not tried again by itself

    assert after.writes == 0 and rollout.prometheus.queries == []


HEADER_FIRST = [
    {"setHeaderRoute": {"name": "X-Canary", "value": "on"}},
    {"setWeight": 20},
    {"pause": {}},
]
BY_HEADER = "nginx.ingress.kubernetes.io/canary-by-header"


def test_a_header_route_reaches_a_ready_canary_at_weight_0_and_ends_with_the_rollout():
    rollout = Rollout(HEADER_FIRST).serve()
    rollout.change_image()
    rollout.tick()
    assert CANARY_INGRESS not in rollout.kube.objects  # not ready: no route, not even pinned

    rollout.kube.roll_out(CANARY)
    rollout.tick()

    pinned = {"kind": "header", "name": "X-Canary", "value": "on"}
    assert (rollout.canary["weight"], rollout.canary["match"]) == (0, pinned)
    assert rollout.kept()["match"] == pinned
    notes = rollout.kube.objects[CANARY_INGRESS]["metadata"]["annotations"]
    assert (notes[WEIGHT], notes[BY_HEADER], notes[BY_HEADER + "-value"]) == ("0", "X-Canary", "on")

    rollout.tick()

    notes = rollout.kube.objects[CANARY_INGRESS]["metadata"]["annotations"]
    assert (notes[WEIGHT], notes[BY_HEADER]) == ("20", "X-Canary")
    rollout.tick()
    assert (rollout.canary["phase"], rollout.canary["match"]) == ("Paused", pinned)

    rollout.kube.apply_status(NS, NAME, {"intent": {"action": "abort", "id": "a1"}}, "herd-cli")
    rollout.tick()

    assert rollout.canary["phase"] == "Aborted" and "match" not in rollout.canary
    assert "match" not in rollout.kept()
    assert not set(CANARY_OBJECTS) & set(rollout.kube.objects)


def test_an_ab_test_judges_the_matching_requests_at_weight_0_then_promotes():
    ab_test = {"abTest": {"match": {"header": {"name": "X-Beta"}}, "analyses": 2}}
    rollout = Rollout([], canary=ab_test).serve()
    rollout.change_image()
    rollout.kube.roll_out(CANARY)
    rollout.tick()

    notes = rollout.kube.objects[CANARY_INGRESS]["metadata"]["annotations"]
    assert (notes[WEIGHT], notes[BY_HEADER]) == ("0", "X-Beta")
    assert BY_HEADER + "-value" not in notes  # ingress-nginx's "always"
    assert (rollout.canary["stepIndex"], rollout.canary["steps"]) == (1, 2)

    rollout.tick(INTERVAL)
    assert len(rollout.prometheus.queries) == 3  # the canary's requests, at weight 0
    assert (rollout.canary["phase"], rollout.canary["passedChecks"]) == ("Progressing", 1)
    rollout.tick(INTERVAL)

    assert (rollout.canary["phase"], rollout.canary["passedChecks"]) == ("Promoting", 2)
    assert rollout.image(STABLE_DEPLOYMENT) == "web:2"


def promoting() -> Rollout:
    """Paused at weight 20 for promote, then `herd promote`: the stable takes web:2."""
    rollout = Rollout(PAUSE_FOR_PROMOTE).at_weight()
    rollout.tick(INTERVAL)
    assert rollout.canary["phase"] == "Paused"
    rollout.kube.apply_status(NS, NAME, {"intent": {"action": "promote", "id": "i1"}}, "herd-cli")
    rollout.tick()
    return rollout


def test_promote_moves_the_stable_deployment_to_the_new_template():
    rollout = promoting()

    assert rollout.canary["phase"] == "Promoting"
    assert rollout.canary["handledIntent"] == "i1"
    assert STABLE_DEPLOYMENT in rollout.kube.written("apply")
    assert rollout.image(STABLE_DEPLOYMENT) == "web:2"
    assert rollout.status["stableSpec"]["image"] == "web:1"  # not rolled out yet
    assert rollout.status["intent"]["id"] == "i1"  # the CLI's field, left alone

    rollout.kube.roll_out(NAME)
    outcome = rollout.tick()

    assert rollout.canary["phase"] == "Succeeded"
    assert "Succeeded" in [reason for _, reason, _ in outcome.events]
    assert set(rollout.kube.written("delete")) == set(CANARY_OBJECTS)
    assert rollout.condition("Degraded")["status"] == "False"


def test_a_promoted_canary_stays_promoted():
    rollout = promoting()
    rollout.kube.roll_out(NAME)
    rollout.tick()  # Succeeded
    rollout.kube.roll_out(NAME)

    rollout.tick()

    assert rollout.canary["phase"] == "Succeeded"
    assert rollout.image(STABLE_DEPLOYMENT) == "web:2"
    assert rollout.status["stableSpec"]["image"] == "web:2"


FORGED_STABLE = {"image": "evil:1", "app": "app.main:app", "env": [{"name": "X", "value": "1"}]}


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param({"canary": {"phase": "Promoting", "stepIndex": 2}}, id="phase-promoting"),
        pytest.param({"stableSpec": FORGED_STABLE}, id="stable-spec"),
        pytest.param(
            {"canary": {"phase": "Succeeded", "canaryRevision": "x"}, "stableSpec": FORGED_STABLE},
            id="both",
        ),
    ],
)
def test_what_a_promoter_writes_to_status_reaches_no_deployment(forged):
    """herd-promoter may patch webservices/status (for status.intent); whatever else it writes
    there is a report the operator rewrites, never an input."""
    rollout = Rollout(PAUSE_FOR_PROMOTE).at_weight()
    rollout.tick(INTERVAL)  # analysed at 20 %, now paused for herd promote
    assert rollout.canary["phase"] == "Paused"
    rollout.kube.apply_status(NS, NAME, forged, manager="herd-promoter")

    rollout.tick()
    rollout.kube.roll_out(NAME)
    rollout.tick()

    assert rollout.image(STABLE_DEPLOYMENT) == "web:1"
    assert rollout.image(CANARY_DEPLOYMENT) == "web:2"
    assert rollout.kept()["phase"] == "Paused"
    assert rollout.canary["phase"] == "Paused"  # the report restored
    assert rollout.status["stableSpec"]["image"] == "web:1"
    pod = rollout.kube.objects[STABLE_DEPLOYMENT]["spec"]["template"]["spec"]
    assert all(e["name"] != "X" for e in pod["containers"][0]["env"])


def test_metric_checks_and_the_stable_track_are_queried_for_their_tracks_and_judged():
    check = {
        "name": "orders",
        "query": 'sum(orders{ns="{{ namespace }}", t="{{ track }}"}[{{ interval }}])',
        "maxIncreaseOverStable": 0.1,
    }
    canary = {"steps": TIMED_PAUSE, "analysis": {"metrics": [check], "compareWithStable": {}}}
    rollout = Rollout(TIMED_PAUSE, canary=canary).at_weight()
    rollout.prometheus.answer('t="canary"', Observation("value", 20.0))
    rollout.prometheus.answer('t="stable"', Observation("value", 10.0))
    rollout.tick(INTERVAL)
    sent = [promql for _, promql in rollout.prometheus.queries]
    assert 'sum(orders{ns="ns", t="canary"}[30s])' in sent
    assert 'sum(orders{ns="ns", t="stable"}[30s])' in sent
    assert len(sent) == 3 + 3 + 2  # both tracks' built-in queries, the check for each track
    last = rollout.canary["lastAnalysis"]
    assert last["verdict"] == "fail"
    assert {c["name"]: c["verdict"] for c in last["checks"]}["orders"] == "fail"
