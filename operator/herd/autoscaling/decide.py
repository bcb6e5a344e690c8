"""The built-in autoscaler's decision: replicas from requests per minute, utilization and error
rate. Pure.

The rules follow the HPA's where it has them (sync every 15 s, 10 % tolerance, scale-up by at
most max(100 %, 4 pods) per period, scale-down to the highest recommendation of the
stabilization window) and add what the HPA cannot know:
- an error rate above `maxErrorRate` forbids scaling in;
- errors add replicas only when they look like saturation (502/503/504: the proxy found no
  free upstream); a bug does not get better with more pods;
- no data, NaN or an unreachable Prometheus keep the current replicas (fail static) and say so.

With `targetUtilization`, the requests in service are a second signal, as Knative's KPA has
them: over a stable window (60 s) they want ceil(concurrency / (capacity x target)) pods, and
the larger of that and the RPM recommendation wins; over a panic window (6 s) reaching the
pods' whole capacity scales out at once, and nothing scales in until a stable window has passed
without it. Utilization unknown while RPM is known: RPM decides, but never scales in, since
nothing says the pods are not busy with slow requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from herd.model import AutoscalingSpec
from herd.observation import Observation

TOLERANCE = 0.10
#: Knative KPA's windows: the stable one sizes, the panic one reacts.
STABLE_WINDOW = "1m"
PANIC_WINDOW = "6s"
#: Panic when the panic window's requests fill this fraction of the pods' capacity.
PANIC_UTILIZATION = 1.0
#: After the last panic, no scale-in for the stable window (KPA stays in panic mode as long).
PANIC_HOLD_SECONDS = 60
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
    #: Requests in service, mean over the stable and the panic window; with targetUtilization.
    concurrency: Observation | None = None
    panic_concurrency: Observation | None = None


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
    utilization: float | None = None  # of the current replicas' capacity, over the stable window
    last_panic: float | None = None  # seconds since the epoch


def _clamp(value: int, spec: AutoscalingSpec) -> int:
    return max(spec.min_replicas, min(spec.max_replicas, value))


def _window(history: tuple[Recommendation, ...], since: float) -> tuple[Recommendation, ...]:
    """The recommendations stabilization still needs: those inside the window, less any that a
    later, at-least-as-high one outlives (the window's maximum never depends on them)."""
    kept: list[Recommendation] = []
    for recommendation in reversed(history):
        if recommendation.at >= since and all(recommendation.replicas > k.replicas for k in kept):
            kept.append(recommendation)
    return tuple(reversed(kept))


def recommend(spec: AutoscalingSpec, current: int, rpm: float) -> int:
    """Replicas for this load alone: ceil(RPM / target), unless within the tolerance band."""
    return _sized(current, rpm, spec.target_rpm_per_replica)


def _sized(current: int, load: float, per_replica: float) -> int:
    """ceil(load / per_replica), unless within the tolerance band of the current replicas."""
    if current > 0 and abs(load / (current * per_replica) - 1) <= TOLERANCE:
        return current
    return math.ceil(load / per_replica)


def _value(seen: Observation | None) -> float | None:
    return seen.value if seen is not None and seen.ok and seen.value is not None else None


@dataclass(frozen=True)
class _Utilization:
    """What the requests in service want, beside RPM."""

    wanted: int
    utilization: float | None  # None: unknown (no data)
    panicking: bool
    why: str


def _by_utilization(current: int, seen: Observations, capacity: int, target: float) -> _Utilization:
    per_pod = capacity * target
    concurrency, burst = _value(seen.concurrency), _value(seen.panic_concurrency)
    # A missing gauge (an older herd-runtime, or scrapes sparser than the panic window) only
    # means no panic: the stable signal still sizes.
    panicking = (
        burst is not None and current > 0 and burst >= PANIC_UTILIZATION * current * capacity
    )
    if panicking:
        return _Utilization(
            math.ceil(burst / per_pod),
            None if concurrency is None else concurrency / (current * capacity),
            True,
            f"panic: {burst:.1f} requests in service over {PANIC_WINDOW} fill the capacity of "
            f"{current} x {capacity}; sizing for {target:.0%}",
        )
    if concurrency is None:
        kind = seen.concurrency.kind if seen.concurrency is not None else "empty"
        return _Utilization(0, None, False, f"utilization unknown ({kind})")
    utilization = concurrency / (current * capacity) if current > 0 else None
    shown = f"{utilization:.0%}" if utilization is not None else "no pods"
    return _Utilization(
        _sized(current, concurrency, per_pod),
        utilization,
        False,
        f"{concurrency:.1f} requests in service, {shown} of {current} x {capacity}, "
        f"target {target:.0%}",
    )


def with_canary_share(seen: Observations, canary_weight: int) -> Observations:
    """The stable track's observations, its requests (per minute and in service) scaled up to
    all of the traffic.

    While a canary takes `canary_weight` % of the traffic, `spec.replicas` still sizes the
    service for all of it: the stable keeps them (it takes everything back on a rollback) and
    the canary gets ceil(replicas x weight / 100). Errors stay the stable's own: a canary's
    failures are its analysis's business, never the stable's scaling."""
    if not 0 < canary_weight < 100:
        return seen
    share = 1 - canary_weight / 100

    def full(part: Observation | None) -> Observation | None:
        value = _value(part)
        return part if value is None else replace(part, value=value / share)

    return replace(
        seen,
        rpm=full(seen.rpm),
        concurrency=full(seen.concurrency),
        panic_concurrency=full(seen.panic_concurrency),
    )


def decide(
    spec: AutoscalingSpec,
    current: int,
    seen: Observations,
    history: tuple[Recommendation, ...],
    now: float,
    capacity: int = 0,
    last_panic: float | None = None,
) -> Decision:
    """`capacity`: requests one pod serves at once (the tuning's); `last_panic`: when the
    previous decisions last panicked."""
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

    use = None
    if spec.target_utilization is not None and capacity > 0:
        use = _by_utilization(current, seen, capacity, spec.target_utilization)
        if use.panicking:
            last_panic = now
        if use.wanted > wanted:
            wanted = use.wanted
            reason, why = ("Panic" if use.panicking else "Utilization"), f"{use.why}; {why}"
        else:
            why = f"{why}; {use.why}"

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
    if replicas < current and use is not None:
        if last_panic is not None and now - last_panic < PANIC_HOLD_SECONDS:
            replicas, reason = current, "Panic"
            why = f"{why}; no scale-in within {PANIC_HOLD_SECONDS}s of a panic"
        elif use.utilization is None:
            replicas, reason = current, "UtilizationUnknown"
            why = f"{why}: not scaling in on RPM alone"
    utilization = use.utilization if use is not None else None
    return Decision(replicas, True, reason, why, kept, rpm, errors, utilization, last_panic)
