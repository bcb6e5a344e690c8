"""What the operator exports per WebService: the pure report of a pass, the report a reconcile
makes of a real rollout, and the series it becomes (and stops being)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from herd import model, operator_metrics
from herd.service_metrics import Report, new_analyses, report, rolled_back
from tests.unit.test_rollout_turn import FAILING, HEALTHY, INTERVAL, TIMED_PAUSE, Rollout


def analysed(time: str, verdict: str = "pass", phase: str = "Progressing") -> dict[str, Any]:
    return {"phase": phase, "lastAnalysis": {"time": time, "verdict": verdict}}


@pytest.mark.parametrize(
    "before, after, expected",
    [
        pytest.param(None, None, (), id="no-rollout"),
        pytest.param(None, {"phase": "Progressing"}, (), id="started-no-analysis"),
        pytest.param(None, analysed("t1", "fail"), ("fail",), id="first-analysis"),
        pytest.param(analysed("t1"), analysed("t2", "inconclusive"), ("inconclusive",), id="new"),
        pytest.param(analysed("t1"), analysed("t1"), (), id="same-analysis-again"),
        pytest.param(None, analysed("t1", "maybe"), (), id="unknown-verdict-not-exported"),
    ],
)
def test_an_analysis_is_counted_by_the_pass_that_recorded_it(before, after, expected):
    assert new_analyses(before, after) == expected


@pytest.mark.parametrize(
    "before, after, expected",
    [
        pytest.param({"phase": "Progressing"}, {"phase": "RolledBack"}, True, id="rolled-back"),
        pytest.param({"phase": "Paused"}, {"phase": "RolledBack"}, True, id="from-pause"),
        pytest.param({"phase": "RolledBack"}, {"phase": "RolledBack"}, False, id="still"),
        pytest.param({"phase": "Progressing"}, {"phase": "Aborted"}, False, id="aborted"),
        pytest.param(None, None, False, id="no-rollout"),
    ],
)
def test_a_rollback_is_counted_once(before, after, expected):
    assert rolled_back(before, after) is expected


def parse(**spec: Any) -> model.WebService:
    body = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {"image": "web:1", "app": "app:app", **spec},
    }
    return model.parse(body)


def test_a_plain_webservice_reports_its_replicas_and_no_limits():
    got = report(parse(replicas=3), None, None, {"readyReplicas": 2})

    assert got == Report("ns", "web", 3, 2, 0, has_canary=False)


def test_the_limits_come_from_the_spec_and_the_ceiling_from_the_builtin_autoscaler_only():
    canary = {"steps": [{"setWeight": 50}], "analysis": {"maxErrorRate": 0.02}}
    builtin = {"enabled": True, "maxReplicas": 7, "maxErrorRate": 0.1}

    got = report(parse(autoscaling=builtin, canary=canary), None, {"weight": 50}, {})
    keda = report(parse(autoscaling={**builtin, "engine": "keda"}), None, None, {})

    assert (got.max_replicas, got.max_error_rates) == (
        7,
        (("autoscaling", 0.1), ("analysis", 0.02)),
    )
    assert (got.canary_weight, got.has_canary) == (50, True)
    assert keda.max_replicas is None  # KEDA's HPA has the ceiling, and its own metrics
    assert keda.max_error_rates == (("autoscaling", 0.1),)


def test_a_reconcile_reports_each_failed_analysis_then_the_rollback_once():
    rollout = Rollout(TIMED_PAUSE, FAILING).at_weight()

    first, second, after = (rollout.tick(INTERVAL).report for _ in range(3))

    assert (first.analyses, first.rolled_back, first.canary_weight) == (("fail",), False, 20)
    assert (second.analyses, second.rolled_back, second.canary_weight) == (("fail",), True, 0)
    assert (after.analyses, after.rolled_back) == ((), False)


def test_a_reconcile_reports_a_pass_once_and_the_stable_replicas():
    rollout = Rollout(TIMED_PAUSE, HEALTHY).at_weight()

    passed, idle = rollout.tick(INTERVAL).report, rollout.tick(1).report

    assert passed.analyses == ("pass",) and idle.analyses == ()
    assert (passed.desired_replicas, passed.ready_replicas) == (1, 1)


# --- The series. ---


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
def namespace() -> str:
    """A namespace of its own: the metrics are process-wide."""
    return f"ns-{uuid.uuid4().hex[:8]}"


def canary_report(namespace: str, **fields: Any) -> Report:
    base = dict(
        desired_replicas=4,
        ready_replicas=3,
        canary_weight=20,
        has_canary=True,
        max_replicas=10,
        max_error_rates=(("autoscaling", 0.05), ("analysis", 0.01)),
    )
    return Report(namespace, "web", **{**base, **fields})


def test_a_report_becomes_the_webservices_series(namespace):
    who = {"namespace": namespace, "webservice": "web"}

    operator_metrics.record(canary_report(namespace))

    assert value("herd_webservice_replicas", **who, kind="desired") == 4
    assert value("herd_webservice_replicas", **who, kind="ready") == 3
    assert value("herd_webservice_canary_weight", **who) == 20
    assert value("herd_webservice_max_replicas", **who) == 10
    assert value("herd_webservice_max_error_rate", **who, limit="analysis") == 0.01
    # Present at 0 before the first, so that increase() sees the first one.
    assert value("herd_canary_rollbacks_total", **who) == 0
    for verdict in ("pass", "fail", "inconclusive"):
        assert value("herd_canary_analyses_total", **who, verdict=verdict) == 0

    operator_metrics.record(canary_report(namespace, analyses=("fail",), rolled_back=True))
    operator_metrics.record(canary_report(namespace, analyses=("fail",)))

    assert value("herd_canary_analyses_total", **who, verdict="fail") == 2
    assert value("herd_canary_rollbacks_total", **who) == 1


def test_a_limit_taken_out_of_the_spec_is_no_longer_exported(namespace):
    who = {"namespace": namespace, "webservice": "web"}
    operator_metrics.record(canary_report(namespace))

    operator_metrics.record(canary_report(namespace, max_replicas=None, max_error_rates=()))

    assert value("herd_webservice_max_replicas", **who) is None
    assert value("herd_webservice_max_error_rate", **who, limit="autoscaling") is None
    assert value("herd_webservice_replicas", **who, kind="desired") == 4


def test_a_deleted_webservice_leaves_no_series_and_its_neighbours_keep_theirs(namespace):
    operator_metrics.record(canary_report(namespace, analyses=("pass",)))
    operator_metrics.record(Report(namespace, "other", 1, 1, 0, has_canary=False))

    operator_metrics.forget(namespace, "web")

    exported = [
        sample
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.labels.get("namespace") == namespace
    ]
    assert exported and {s.labels["webservice"] for s in exported} == {"other"}
