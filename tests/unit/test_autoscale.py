"""The autoscaler's decision, as tables: tolerance, policies, stabilization, bounds, the
error-rate guard, and what happens without data."""

from __future__ import annotations

import pytest

from herd.autoscaling.decide import (
    Observations,
    Recommendation,
    decide,
    recommend,
    with_canary_share,
)
from herd.model import AutoscalingSpec
from herd.prometheus import Observation

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
