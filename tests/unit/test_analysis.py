"""Analysis verdicts, check by check: Herd's own thresholds, the comparison with the stable
track, and the user's metric checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herd.model import AnalysisSpec, MetricCheck, StableComparison
from herd.observation import Observation
from herd.rollout.analysis import MetricReading, TrackMetrics, judge

ANALYSIS = AnalysisSpec(
    interval_seconds=30, max_error_rate=0.01, max_p99_latency_ms=500, min_requests=50
)
COMPARED = replace(ANALYSIS, max_error_rate=0.05, compare_with_stable=StableComparison())


def obs(value=None, kind="value", detail=""):
    return Observation(kind, value, detail) if kind == "value" else Observation(kind, detail=detail)


def track(requests=100.0, errors=0.0, p99=0.2):
    return TrackMetrics(obs(requests), obs(errors), obs(p99))


@pytest.mark.parametrize(
    ("requests", "errors", "p99", "result"),
    [
        (obs(100), obs(0.0), obs(0.2), "pass"),
        (obs(100), obs(0.02), obs(0.2), "fail"),  # error rate above 1 %
        (obs(100), obs(0.0), obs(0.9), "fail"),  # p99 900 ms above 500 ms
        (obs(10), obs(0.0), obs(0.2), "inconclusive"),  # below minRequests: never a pass
        (obs(kind="empty"), obs(kind="empty"), obs(kind="empty"), "inconclusive"),  # no traffic
        (obs(100), obs(kind="nan"), obs(0.2), "inconclusive"),  # NaN is not a pass
        (obs(100), obs(0.0), obs(kind="nan"), "inconclusive"),  # latency checked but unknown
        (obs(kind="unreachable"), obs(0.0), obs(0.2), "inconclusive"),
    ],
)
def test_judge(requests, errors, p99, result):
    assert judge(ANALYSIS, TrackMetrics(requests, errors, p99)).result == result


@pytest.mark.parametrize(
    ("canary", "stable", "result", "failing"),
    [
        # 3x the stable's error rate, both under maxErrorRate 5 %: the comparison fails it.
        (track(errors=0.03), track(errors=0.01), "fail", "errorRateVsStable"),
        (track(errors=0.015), track(errors=0.01), "pass", None),  # within 2x the stable's
        # A stray error beside a stable with none is within the 0.1 % tolerance.
        (track(errors=0.0008), track(errors=0.0), "pass", None),
        (track(p99=0.4), track(p99=0.2), "fail", "p99LatencyVsStable"),  # 400 ms over 300 ms
        (track(p99=0.012), track(p99=0.004), "pass", None),  # 8 ms more: within 10 ms
        (track(errors=0.06), track(errors=0.06), "fail", "errorRate"),  # no worse, but too many
        # Nothing to compare with: the stable track had too few requests, or none.
        (track(), track(requests=10), "inconclusive", None),
        (
            track(),
            TrackMetrics(obs(kind="empty"), obs(kind="empty"), obs(kind="empty")),
            "inconclusive",
            None,
        ),
        (track(), TrackMetrics(obs(100), obs(kind="nan"), obs(0.2)), "inconclusive", None),
        (track(), TrackMetrics(obs(100), obs(0.0), obs(kind="nan")), "inconclusive", None),
    ],
)
def test_a_relative_check_judges_the_canary_against_the_stable(canary, stable, result, failing):
    verdict = judge(COMPARED, canary, stable)
    assert verdict.result == result
    failed = [c.name for c in verdict.checks if c.result == "fail"]
    assert failed == ([failing] if failing else [])


def test_a_canary_at_3x_the_stables_error_rate_fails_under_the_absolute_threshold():
    verdict = judge(COMPARED, track(errors=0.03), track(errors=0.01))
    assert verdict.result == "fail"
    assert verdict.message == "error rate 3.00% above 2.00% (stable 1.00%)"
    compared = {c.name: c for c in verdict.checks}["errorRateVsStable"]
    assert (compared.value, compared.stable) == (0.03, 0.01)
    assert {c.name: c.result for c in verdict.checks}["errorRate"] == "pass"


def checked(threshold, limit, name="checkout-failures"):
    return replace(ANALYSIS, metrics=(MetricCheck(name, "q", threshold, limit),))


@pytest.mark.parametrize(
    ("threshold", "limit", "reading", "result"),
    [
        ("max", 5, MetricReading(obs(3)), "pass"),
        ("max", 5, MetricReading(obs(7)), "fail"),
        ("min", 0.9, MetricReading(obs(0.95)), "pass"),
        ("min", 0.9, MetricReading(obs(0.5)), "fail"),
        ("maxIncreaseOverStable", 0.2, MetricReading(obs(11), obs(10)), "pass"),
        ("maxIncreaseOverStable", 0.2, MetricReading(obs(13), obs(10)), "fail"),
        ("maxIncreaseOverStable", 0.2, MetricReading(obs(1), obs(0)), "fail"),  # 0 allows 0
        ("maxIncreaseOverStable", 0.2, MetricReading(obs(0), obs(0)), "pass"),
    ],
)
def test_a_metric_check_against_its_threshold(threshold, limit, reading, result):
    verdict = judge(checked(threshold, limit), track(), metrics={"checkout-failures": reading})
    assert verdict.result == result
    assert verdict.checks[-1].name == "checkout-failures"
    assert verdict.checks[-1].result == result


NO_DATA = [
    obs(kind="empty", detail="no series matched"),
    obs(kind="nan", detail="the query evaluated to NaN"),
    obs(kind="invalid", detail="2 series where one was expected"),
    obs(kind="unreachable", detail="http://prometheus:9090: HTTP 503"),
]


@pytest.mark.parametrize("threshold", ["max", "min", "maxIncreaseOverStable"])
@pytest.mark.parametrize("missing", NO_DATA, ids=[o.kind for o in NO_DATA])
def test_no_data_is_never_a_pass_for_user_metrics(threshold, missing):
    # Whatever the threshold, a value that would pass it were it there: 0 passes max 5, and
    # min -1 (a min of 0 would be passed by an empty result read as zero).
    limit = {"max": 5, "min": -1, "maxIncreaseOverStable": 0.2}[threshold]
    for reading in (MetricReading(missing, obs(10)), MetricReading(missing)):
        verdict = judge(checked(threshold, limit), track(), metrics={"checkout-failures": reading})
        assert verdict.result == "inconclusive"
        assert missing.detail in verdict.message
    if threshold == "maxIncreaseOverStable":  # the stable's value missing: nothing to compare
        verdict = judge(
            checked(threshold, limit),
            track(),
            metrics={"checkout-failures": MetricReading(obs(0), missing)},
        )
        assert verdict.result == "inconclusive" and missing.detail in verdict.message


def test_too_few_requests_is_inconclusive_whatever_a_metric_check_reads():
    verdict = judge(
        checked("max", 5), track(requests=10), metrics={"checkout-failures": MetricReading(obs(0))}
    )
    assert verdict.result == "inconclusive"
    assert verdict.message == "10 requests, fewer than minRequests 50"


def test_a_refused_query_is_inconclusive_with_prometheus_error_in_its_check():
    refused = obs(kind="invalid", detail="Prometheus refused the query: bad_data: parse error")
    verdict = judge(
        checked("max", 5), track(), metrics={"checkout-failures": MetricReading(refused)}
    )
    assert verdict.result == "inconclusive"
    assert verdict.checks[-1].message == (
        "checkout-failures unknown (invalid: Prometheus refused the query: bad_data: parse error)"
    )


def test_a_failure_outweighs_an_inconclusive_check():
    metrics = {"checkout-failures": MetricReading(obs(kind="empty"))}
    verdict = judge(checked("max", 5), track(errors=0.5), metrics=metrics)
    assert verdict.result == "fail" and verdict.message == "error rate 50.00% above 1.00%"


def test_a_query_template_is_filled_with_escaped_values():
    from herd.metric_sources import Target, render_query

    template = 'sum(x{ns="{{ namespace }}", app="{{name}}", t="{{ track }}"}[{{ interval }}])'
    sneaky = Target("ns", 'web"} or vector(1) or x{a="', "canary", "30s")
    assert render_query(template, sneaky) == (
        'sum(x{ns="ns", app="web\\"} or vector(1) or x{a=\\"", t="canary"}[30s])'
    )


def test_herd_status_shows_each_check_of_the_last_analysis():
    from herd.rollout.views import analysis_text

    last = {
        "time": "2026-12-05T15:00:00Z",
        "verdict": "fail",
        "message": "error rate 3.00% above 2.00% (stable 1.00%)",
        "checks": [
            {"name": "errorRate", "verdict": "pass", "message": "error rate 3.00%, max 5.00%"},
            {
                "name": "errorRateVsStable",
                "verdict": "fail",
                "message": "error rate 3.00% above 2.00% (stable 1.00%)",
            },
            {"name": "orders", "verdict": "inconclusive", "message": "orders unknown (empty)"},
        ],
    }
    assert analysis_text(last, {}).splitlines()[-3:] == [
        "pass         errorRate: error rate 3.00%, max 5.00%",
        "fail         errorRateVsStable: error rate 3.00% above 2.00% (stable 1.00%)",
        "inconclusive orders: orders unknown (empty)",
    ]
