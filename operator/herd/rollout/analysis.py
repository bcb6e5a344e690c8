"""The verdict of one canary analysis, check by check. Pure: (spec.canary.analysis, what the
queries answered) -> Verdict.

Every check is pass, fail or inconclusive; the analysis fails when any check fails, and is
otherwise inconclusive when any check is: no data (empty, NaN, an unreachable or refused
query, too few requests) is never a pass, for Herd's own checks and a user's alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from herd.model import AnalysisSpec, MetricCheck, StableComparison
from herd.observation import Observation

Result = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Check:
    name: str  # one of herd.api.BUILTIN_CHECKS, or a metric check's name
    result: Result
    message: str
    value: float | None = None  # the canary's
    stable: float | None = None  # the stable's, for a comparison with it


@dataclass(frozen=True)
class Verdict:
    result: Result
    message: str
    requests: float | None = None
    error_rate: float | None = None
    p99_latency_ms: float | None = None
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class TrackMetrics:
    """What the built-in queries answered for one track over the interval."""

    requests: Observation
    error_rate: Observation
    p99_seconds: Observation


@dataclass(frozen=True)
class MetricReading:
    """What a metric check's query answered for the canary, and for the stable when its
    threshold compares with it."""

    canary: Observation
    stable: Observation | None = None


def _unknown(what: str, observation: Observation) -> str:
    detail = f": {observation.detail}" if observation.detail else ""
    return f"{what} unknown ({observation.kind}{detail})"


def _requests(analysis: AnalysisSpec, requests: Observation, track: str) -> Check:
    count = requests.value if requests.ok else None
    if count is None or count < analysis.min_requests:
        seen = f"{count:.0f}" if count is not None else f"no data ({requests.kind})"
        return Check(
            "requestCount",
            "inconclusive",
            f"{track}{seen} requests, fewer than minRequests {analysis.min_requests}",
            count,
        )
    return Check("requestCount", "pass", f"{count:.0f} requests", count)


def _error_rate(analysis: AnalysisSpec, error_rate: Observation) -> Check:
    if not error_rate.ok or error_rate.value is None:
        return Check("errorRate", "inconclusive", _unknown("error rate", error_rate))
    errors = error_rate.value
    limit = analysis.max_error_rate
    if errors > limit:
        return Check("errorRate", "fail", f"error rate {errors:.2%} above {limit:.2%}", errors)
    return Check("errorRate", "pass", f"error rate {errors:.2%}, max {limit:.2%}", errors)


def _latency_ms(p99_seconds: Observation) -> float | None:
    return p99_seconds.value * 1000 if p99_seconds.ok and p99_seconds.value is not None else None


def _p99(analysis: AnalysisSpec, p99_seconds: Observation) -> Check:
    latency = _latency_ms(p99_seconds)
    limit = analysis.max_p99_latency_ms
    if latency is None:
        return Check("p99Latency", "inconclusive", _unknown("p99 latency", p99_seconds))
    if latency > limit:
        return Check("p99Latency", "fail", f"p99 {latency:.0f} ms above {limit} ms", latency)
    return Check("p99Latency", "pass", f"p99 {latency:.0f} ms, max {limit} ms", latency)


@dataclass(frozen=True)
class _Compared:
    """One measure compared with the stable's: its check, its words, how a value reads."""

    check: str
    what: str  # as an unknown value is named: "p99 latency"
    label: str  # before a value: "p99"
    show: Callable[[float], str]
    scale: float = 1.0  # from what Prometheus answers to `show`'s unit


_ERROR_RATE = _Compared("errorRateVsStable", "error rate", "error rate", lambda v: f"{v:.2%}")
_P99 = _Compared("p99LatencyVsStable", "p99 latency", "p99", lambda v: f"{v:.0f} ms", 1000.0)


def _relative(
    measure: _Compared, canary: Observation, stable: Observation, increase: float, tolerance: float
) -> Check:
    """The canary's value against the stable's: it passes up to the stable's times
    (1 + increase), or the stable's plus the tolerance, whichever is more; unknown on either
    side is inconclusive."""
    for side, observation in (("", canary), ("stable ", stable)):
        if not observation.ok or observation.value is None:
            unknown = _unknown(f"{side}{measure.what}", observation)
            return Check(measure.check, "inconclusive", unknown)
    assert canary.value is not None and stable.value is not None
    value, base = canary.value * measure.scale, stable.value * measure.scale
    allowed = max(base * (1 + increase), base + tolerance)
    worse = value > allowed
    show = measure.show
    return Check(
        measure.check,
        "fail" if worse else "pass",
        f"{measure.label} {show(value)} {'above' if worse else 'within'} {show(allowed)} "
        f"(stable {show(base)})",
        value,
        base,
    )


def _versus_stable(
    analysis: AnalysisSpec, compare: StableComparison, canary: TrackMetrics, stable: TrackMetrics
) -> list[Check]:
    """The canary's error rate and p99 against the stable's over the same interval."""
    baseline = _requests(analysis, stable.requests, "stable: ")
    if baseline.result != "pass":
        message = f"{baseline.message}: nothing to compare with"
        return [
            Check(_ERROR_RATE.check, "inconclusive", message),
            Check(_P99.check, "inconclusive", message),
        ]
    return [
        _relative(
            _ERROR_RATE,
            canary.error_rate,
            stable.error_rate,
            compare.max_error_rate_increase,
            compare.error_rate_tolerance,
        ),
        _relative(
            _P99,
            canary.p99_seconds,
            stable.p99_seconds,
            compare.max_p99_latency_increase,
            compare.p99_latency_tolerance_ms,
        ),
    ]


def _metric(check: MetricCheck, reading: MetricReading) -> Check:
    canary = reading.canary
    if not canary.ok or canary.value is None:
        return Check(check.name, "inconclusive", _unknown(check.name, canary))
    value = canary.value
    if check.threshold == "max":
        worse, limit, stable = value > check.limit, check.limit, None
        bound = f"max {limit:g}"
    elif check.threshold == "min":
        worse, limit, stable = value < check.limit, check.limit, None
        bound = f"min {limit:g}"
    else:
        if reading.stable is None or not reading.stable.ok or reading.stable.value is None:
            missing = reading.stable or Observation("empty", detail="not queried")
            return Check(
                check.name, "inconclusive", _unknown(f"{check.name} of stable", missing), value
            )
        stable = reading.stable.value
        limit = stable + abs(stable) * check.limit
        worse = value > limit
        bound = f"max {limit:g} (stable {stable:g} + {check.limit:.0%})"
    verb = ("below" if check.threshold == "min" else "above") if worse else "within"
    message = (
        f"{check.name} {value:g}, {bound}"
        if not worse
        else f"{check.name} {value:g} {verb} {bound}"
    )
    return Check(check.name, "fail" if worse else "pass", message, value, stable)


def _overall(checks: Iterable[Check]) -> tuple[Result, str]:
    """The analysis's result: the first failure, else the first inconclusive check, else pass."""
    checks = list(checks)
    for result in ("fail", "inconclusive"):
        for check in checks:
            if check.result == result:
                return check.result, check.message
    return "pass", ""


def judge(
    analysis: AnalysisSpec,
    canary: TrackMetrics,
    stable: TrackMetrics | None = None,
    metrics: Mapping[str, MetricReading] | None = None,
) -> Verdict:
    """pass, fail or inconclusive from the canary's metrics over one interval, the stable's
    over the same interval (with compareWithStable) and the metric checks' readings."""
    requests = _requests(analysis, canary.requests, "")
    if requests.result != "pass":
        return Verdict("inconclusive", requests.message, requests.value, checks=(requests,))
    checks = [requests, _error_rate(analysis, canary.error_rate)]
    if analysis.max_p99_latency_ms:
        checks.append(_p99(analysis, canary.p99_seconds))
    if analysis.compare_with_stable is not None:
        if stable is None:
            raise ValueError("compareWithStable needs the stable track's metrics")
        checks.extend(_versus_stable(analysis, analysis.compare_with_stable, canary, stable))
    readings = metrics or {}
    checks.extend(_metric(check, readings[check.name]) for check in analysis.metrics)
    result, message = _overall(checks)
    errors = checks[1].value
    if result == "pass":
        message = f"{requests.value:.0f} requests, error rate {errors or 0.0:.2%}"
    return Verdict(
        result,
        message,
        requests.value,
        errors,
        _latency_ms(canary.p99_seconds),
        tuple(checks),
    )
