"""The autoscaler's decision, as tables: tolerance, policies, stabilization, bounds, the
error-rate guard, the utilization signal and its panic, and what happens without data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herd import model
from herd.autoscaling.decide import (
    PANIC_HOLD_SECONDS,
    Observations,
    Recommendation,
    decide,
    recommend,
    with_canary_share,
)
from herd.autoscaling.loop import last_panic_of, observe, status_of
from herd.model import AutoscalingSpec
from herd.prometheus import Observation
from herd.serving import runtime

SPEC = AutoscalingSpec(
    enabled=True,
    min_replicas=1,
    max_replicas=20,
    target_rpm_per_replica=600,
    max_error_rate=0.05,
    scale_down_stabilization_seconds=300,
)
NOW = 10_000.0


def seen(rpm=None, errors=0.0, saturation=0.0, rpm_kind="value"):
    value = Observation(rpm_kind, rpm) if rpm_kind == "value" else Observation(rpm_kind)
    return Observations(value, Observation("value", errors), Observation("value", saturation))


@pytest.mark.parametrize(
    ("current", "rpm", "wanted"),
    [
        (2, 1200, 2),  # exactly on target
        (2, 1300, 2),  # +8 %: inside the 10 % band
        (2, 1080, 2),  # -10 %: on the edge, still inside
        (2, 1400, 3),  # +17 %: out of the band
        (2, 1000, 2),  # -17 %: ceil(1000/600) = 2
        (4, 1000, 2),
        (1, 0, 0),  # no traffic: nothing wanted (bounds apply later)
        (0, 700, 2),
    ],
)
def test_recommendation_and_tolerance(current, rpm, wanted):
    assert recommend(SPEC, current, rpm) == wanted


@pytest.mark.parametrize(
    ("current", "rpm", "replicas", "reason"),
    [
        (2, 6000, 6, "Load"),  # wants 10; +4 pods beats +100 % from 2
        (8, 60000, 16, "Load"),  # wants 100; +100 % beats +4 from 8
        (16, 60000, 20, "Load"),  # capped by maxReplicas
        (1, 0, 1, "Load"),  # never below minReplicas
        (2, 1200, 2, "Load"),
    ],
)
def test_scale_up_policy_and_bounds(current, rpm, replicas, reason):
    decision = decide(SPEC, current, seen(rpm), (), NOW)
    assert (decision.replicas, decision.reason, decision.active) == (replicas, reason, True)


def test_scale_down_waits_for_the_highest_recommendation_in_the_window():
    history = (
        Recommendation(NOW - 400, 9),
        Recommendation(NOW - 200, 6),
        Recommendation(NOW - 100, 5),
    )
    decision = decide(SPEC, 6, seen(rpm=600), history, NOW)
    assert decision.replicas == 6 and decision.reason == "Stabilizing"
    # The 400 s old recommendation fell out of the window; the 200 s one still holds.
    assert [r.replicas for r in decision.recommendations] == [6, 5, 1]
    later = decide(SPEC, 6, seen(rpm=600), decision.recommendations, NOW + 150)
    assert later.replicas == 5  # the 6 aged out; 5 is now the highest in the window
    latest = decide(SPEC, 5, seen(rpm=600), later.recommendations, NOW + 301)
    assert latest.replicas == 1


def test_scale_down_never_goes_up_from_an_old_higher_recommendation():
    history = (Recommendation(NOW - 10, 12),)
    assert decide(SPEC, 6, seen(rpm=600), history, NOW).replicas == 6


@pytest.mark.parametrize(
    ("errors", "saturation", "replicas", "reason"),
    [
        (0.20, 0.00, 6, "ErrorsBlockScaleIn"),  # a bug: hold, do not scale in
        (0.20, 0.15, 7, "SaturationErrors"),  # 502/503/504: one more replica
        (0.20, 0.05, 6, "ErrorsBlockScaleIn"),  # mostly not saturation
        (0.01, 0.00, 6, "Stabilizing"),  # under maxErrorRate: the normal path
    ],
)
def test_error_rate_guard(errors, saturation, replicas, reason):
    history = (Recommendation(NOW - 10, 6),)
    decision = decide(SPEC, 6, seen(rpm=600, errors=errors, saturation=saturation), history, NOW)
    assert (decision.replicas, decision.reason) == (replicas, reason)


def test_no_stabilization_window_scales_in_at_once():
    spec = replace(SPEC, scale_down_stabilization_seconds=0)
    assert decide(spec, 6, seen(rpm=600), (Recommendation(NOW - 1, 6),), NOW).replicas == 1


def test_errors_with_no_stabilization_window_still_block_scale_in():
    spec = AutoscalingSpec(enabled=True, max_error_rate=0.05, scale_down_stabilization_seconds=0)
    decision = decide(spec, 6, seen(rpm=60, errors=0.5), (), NOW)
    assert decision.replicas == 6 and decision.reason == "ErrorsBlockScaleIn"


def test_load_still_scales_out_while_a_bug_fails_requests():
    decision = decide(SPEC, 2, seen(rpm=3000, errors=0.5), (), NOW)
    assert decision.replicas == 5


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "NoData"),
        ("nan", "NoData"),
        ("unreachable", "PrometheusUnavailable"),
        ("invalid", "InvalidQuery"),
    ],
)
def test_no_data_holds_replicas_and_says_why(kind, reason):
    history = (Recommendation(NOW - 10, 3),)
    decision = decide(SPEC, 3, seen(rpm_kind=kind), history, NOW)
    assert (decision.replicas, decision.active, decision.reason) == (3, False, reason)
    assert decision.recommendations == history


def test_nan_error_rate_is_no_guard():
    observed = Observations(Observation("value", 600.0), Observation("nan"), Observation("nan"))
    assert decide(SPEC, 1, observed, (), NOW).replicas == 1


def test_history_keeps_only_what_the_window_maximum_needs():
    history = tuple(Recommendation(NOW - 100 + i, r) for i, r in enumerate([3, 7, 4, 7, 5, 2]))
    decision = decide(SPEC, 7, seen(rpm=600), history, NOW)
    assert [r.replicas for r in decision.recommendations] == [7, 5, 2, 1]
    assert decision.replicas == 7  # the newest 7 still stands in the window


@pytest.mark.parametrize(
    ("weight", "stable_rpm", "rpm"),
    [
        (0, 4800, 4800),  # no rollout
        (20, 4800, 6000),  # the stable serves 80 %: replicas are sized for all 6000
        (50, 3000, 6000),
        (100, 3000, 3000),  # nothing left on the stable to scale from: as observed
    ],
)
def test_during_a_canary_the_stable_track_sizes_for_all_traffic(weight, stable_rpm, rpm):
    adjusted = with_canary_share(seen(stable_rpm, errors=0.2), weight)
    assert adjusted.rpm.value == pytest.approx(rpm)
    assert adjusted.error_rate.value == 0.2  # the stable's own errors, never scaled


def test_no_data_stays_no_data_during_a_canary():
    assert with_canary_share(seen(rpm_kind="empty"), 20).rpm.kind == "empty"


# targetUtilization: requests in service against the pods' capacity (10 per pod here, so a
# 0.5 target sizes for 5 in service per pod), beside RPM; the larger recommendation wins.
BUSY = replace(SPEC, target_utilization=0.5)
CAPACITY = 10


def busy(rpm=600.0, concurrency=None, panic=None, kind="value"):
    """RPM, the stable window's requests in service and the panic window's (None: no series)."""
    stable = Observation(kind, concurrency) if kind == "value" else Observation(kind)
    burst = Observation("value", panic) if panic is not None else Observation("empty")
    return replace(seen(rpm), concurrency=stable, panic_concurrency=burst)


@pytest.mark.parametrize(
    ("current", "observed", "replicas", "reason"),
    [
        # 20 in service want 4 pods; 600 RPM wants 1: utilization wins.
        (2, busy(600, 20, 8), 4, "Utilization"),
        # 3000 RPM want 5; 6 in service want 2: RPM wins.
        (2, busy(3000, 6, 6), 5, "Load"),
        # 10.4 in service on 2 pods sized for 10: inside the 10 % band, and RPM's 1 is lower.
        (2, busy(600, 10.4, 10), 2, "Utilization"),
        (2, busy(600, 11.5, 11), 3, "Utilization"),  # 15 % over: out of the band
        # The panic window's 20 fill 2 x 10: scale out now, for the target (20 / 5).
        (2, busy(600, 8, 20), 4, "Panic"),
        (2, busy(600, 8, 19.9), 2, "Utilization"),  # just under capacity: no panic; 8 want 2
        # Panic is bounded by the scale-up policy (+4 from 2) and maxReplicas.
        (2, busy(600, 8, 200), 6, "Panic"),
        (16, busy(600, 8, 1000), 20, "Panic"),
        # No gauge (an older runtime, sparse scrapes): no panic, the stable window sizes.
        (2, busy(600, 20, None), 4, "Utilization"),
        # Utilization unknown, RPM known: RPM may scale out...
        (2, busy(3000, kind="empty"), 5, "Load"),
        # ...but never in: slow requests may keep the pods busy at a low RPM.
        (6, busy(600, kind="empty"), 6, "UtilizationUnknown"),
        (6, busy(600, kind="unreachable"), 6, "UtilizationUnknown"),
        # Known and low: scales in (no stabilization window in this spec).
        (6, busy(600, 4), 1, "Load"),
    ],
)
def test_utilization_signal(current, observed, replicas, reason):
    spec = replace(BUSY, scale_down_stabilization_seconds=0)
    decision = decide(spec, current, observed, (), NOW, CAPACITY)
    assert (decision.replicas, decision.reason, decision.active) == (replicas, reason, True)


def test_utilization_is_reported_against_the_current_pods():
    decision = decide(BUSY, 2, busy(600, 7, 7), (), NOW, CAPACITY)
    assert decision.utilization == pytest.approx(0.35)
    assert decision.last_panic is None


def test_no_scale_in_for_the_stable_window_after_a_panic():
    spec = replace(BUSY, scale_down_stabilization_seconds=0)
    panicked = decide(spec, 2, busy(600, 8, 20), (), NOW, CAPACITY)
    assert (panicked.replicas, panicked.last_panic) == (4, NOW)
    calm = busy(60, 1, 1)
    held = decide(spec, 4, calm, (), NOW + PANIC_HOLD_SECONDS - 1, CAPACITY, panicked.last_panic)
    assert (held.replicas, held.reason, held.last_panic) == (4, "Panic", NOW)
    after = decide(spec, 4, calm, (), NOW + PANIC_HOLD_SECONDS, CAPACITY, panicked.last_panic)
    assert after.replicas == 1


def test_without_target_utilization_rpm_alone_decides():
    # The same observations as a utilization win above, with the field unset.
    decision = decide(SPEC, 2, busy(600, 20, 200), (), NOW, CAPACITY)
    assert (decision.replicas, decision.reason, decision.utilization) == (1, "Load", None)


def test_no_rpm_holds_whatever_the_utilization():
    observed = replace(busy(concurrency=50, panic=50), rpm=Observation("unreachable"))
    decision = decide(BUSY, 2, observed, (), NOW, CAPACITY)
    assert (decision.replicas, decision.active, decision.reason) == (
        2,
        False,
        "PrometheusUnavailable",
    )


def test_during_a_canary_the_requests_in_service_count_for_all_traffic():
    adjusted = with_canary_share(busy(600, 8, 4), 50)
    assert (adjusted.concurrency.value, adjusted.panic_concurrency.value) == (16, 8)
    assert with_canary_share(busy(600, kind="empty"), 50).concurrency.kind == "empty"


class Recording:
    """A Prometheus that answers every query with 1."""

    def __init__(self):
        self.queries = []

    def query(self, url, promql):
        self.queries.append(promql)
        return Observation("value", 1.0)


def web_service(**autoscaling):
    body = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"image": "i", "app": "a:b", "autoscaling": {"enabled": True, **autoscaling}},
    }
    return model.parse(body)


def test_the_loop_asks_for_the_requests_in_service_only_with_target_utilization():
    prometheus = Recording()
    observed = observe(prometheus, web_service())
    assert observed.concurrency is None and len(prometheus.queries) == 3
    observed = observe(prometheus, web_service(targetUtilization=0.7))
    assert observed.concurrency.value == observed.panic_concurrency.value == 1.0
    assert any(f"{runtime.DURATION_METRIC}_sum" in q and "[1m]" in q for q in prometheus.queries)
    assert any(runtime.IN_FLIGHT_METRIC in q and "[6s]" in q for q in prometheus.queries)


def test_status_shows_utilization_and_keeps_the_last_panic():
    ws = web_service(targetUtilization=0.7)
    decision = decide(ws.autoscaling, 1, busy(60, 1, 30), (), NOW, 4)
    status = status_of(ws, decision, {}, NOW, scaled=True)["autoscaling"]
    assert status["reason"] == "Panic" and status["utilization"] == 0.25
    assert last_panic_of({"autoscaling": status}) == NOW
