"""The built-in autoscaler's decision: replicas from requests per minute and error rate. Pure.

The rules follow the HPA's where it has them (sync every 15 s, 10 % tolerance, scale-up by at
most max(100 %, 4 pods) per period, scale-down to the highest recommendation of the
stabilization window) and add what the HPA cannot know:
- an error rate above `maxErrorRate` forbids scaling in;
- errors add replicas only when they look like saturation (502/503/504: the proxy found no
  free upstream); a bug does not get better with more pods;
- no data, NaN or an unreachable Prometheus keep the current replicas (fail static) and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from herd.model import AutoscalingSpec
from herd.observation import Observation

TOLERANCE = 0.10
SCALE_UP_FACTOR = 2  # +100 % per period...
SCALE_UP_PODS = 4  # ...or +4 pods, whichever is more

_NO_DATA_REASON = {
    "empty": "NoData",
    "nan": "NoData",
    "unreachable": "PrometheusUnavailable",
    "invalid": "InvalidQuery",
}


@dataclass(frozen=True)
class Observations:
    rpm: Observation
    error_rate: Observation
    saturation_error_rate: Observation


@dataclass(frozen=True)
class Recommendation:
    at: float  # seconds since the epoch
    replicas: int


@dataclass(frozen=True)
class Decision:
    replicas: int
    active: bool  # False: holding replicas for lack of data (the ScalingActive condition)
    reason: str
    message: str
    recommendations: tuple[Recommendation, ...]
    rpm: float | None = None
    error_rate: float | None = None


def _clamp(value: int, spec: AutoscalingSpec) -> int:
    return max(spec.min_replicas, min(spec.max_replicas, value))


def _window(history: tuple[Recommendation, ...], since: float) -> tuple[Recommendation, ...]:
    """The recommendations stabilization still needs: those inside the window, less any that a
    later, at-least-as-high one outlives (the window's maximum never depends on them)."""
    kept: list[Recommendation] = []
    for recommendation in reversed(history):
        if recommendation.at > since and all(recommendation.replicas > k.replicas for k in kept):
            kept.append(recommendation)
    return tuple(reversed(kept))


def recommend(spec: AutoscalingSpec, current: int, rpm: float) -> int:
    """Replicas for this load alone: ceil(RPM / target), unless within the tolerance band."""
    if current > 0 and abs(rpm / (current * spec.target_rpm_per_replica) - 1) <= TOLERANCE:
        return current
    return math.ceil(rpm / spec.target_rpm_per_replica)


def with_canary_share(seen: Observations, canary_weight: int) -> Observations:
    """The stable track's observations, its requests scaled up to all of the traffic.

    While a canary takes `canary_weight` % of the traffic, `spec.replicas` still sizes the
    service for all of it: the stable keeps them (it takes everything back on a rollback) and
    the canary gets ceil(replicas x weight / 100). Errors stay the stable's own: a canary's
    failures are its analysis's business, never the stable's scaling."""
    if not 0 < canary_weight < 100 or not seen.rpm.ok or seen.rpm.value is None:
        return seen
    full_traffic = seen.rpm.value / (1 - canary_weight / 100)
    return replace(seen, rpm=replace(seen.rpm, value=full_traffic))


def decide(
    spec: AutoscalingSpec,
    current: int,
    seen: Observations,
    history: tuple[Recommendation, ...],
    now: float,
) -> Decision:
    if not seen.rpm.ok:
        return Decision(
            current,
            False,
            _NO_DATA_REASON[seen.rpm.kind],
            f"holding {current} replicas: requests per minute unknown "
            f"({seen.rpm.kind}: {seen.rpm.detail})",
            history,
        )
    rpm = seen.rpm.value or 0.0
    wanted = recommend(spec, current, rpm)
    reason, why = "Load", f"{rpm:.0f} requests/min for {spec.target_rpm_per_replica} per replica"

    errors = seen.error_rate.value if seen.error_rate.ok else None
    if errors is not None and errors > spec.max_error_rate:
        saturation = seen.saturation_error_rate.value if seen.saturation_error_rate.ok else 0.0
        if saturation and saturation >= errors / 2:
            wanted = max(wanted, current + 1)
            reason, why = (
                "SaturationErrors",
                (f"{errors:.1%} errors, mostly 502/503/504: adding capacity"),
            )
        elif wanted < current:
            wanted = current
            reason, why = (
                "ErrorsBlockScaleIn",
                (
                    f"{errors:.1%} errors above {spec.max_error_rate:.1%}: not scaling in while "
                    "failing (these errors do not look like saturation)"
                ),
            )

    wanted = _clamp(wanted, spec)
    window = spec.scale_down_stabilization_seconds
    kept = _window(history + (Recommendation(now, wanted),), now - window)

    if wanted > current:
        limit = max(current * SCALE_UP_FACTOR, current + SCALE_UP_PODS)
        replicas = min(wanted, limit)
    elif wanted < current:
        # Scale in only as far as the highest recommendation of the window allows.
        replicas = min(current, max(r.replicas for r in kept))
        if replicas == current:
            reason, why = (
                "Stabilizing",
                (f"{why}; {wanted} would do, waiting out the {window}s stabilization window"),
            )
    else:
        replicas = current
    replicas = _clamp(replicas, spec)
    return Decision(replicas, True, reason, why, kept, rpm, errors)
