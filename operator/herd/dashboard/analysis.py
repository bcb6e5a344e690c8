"""The WebService page's analysis charts: the canary's and the stable track's error rate and
p99 latency over the rollout, from Prometheus. Pure: which Prometheus, which range queries
(the canary analysis's own PromQL, from `herd.metric_sources`), and the SVG line charts of
what they answered; `herd.dashboard.app` runs the queries."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from herd import api, model
from herd.endpoints import in_cluster_service, redacted
from herd.metric_sources import SOURCES, Target, Track, target_behind
from herd.observation import Series
from herd.rollout import views as rollout
from herd.rollout.machine import ACTIVE
from herd.settings import Settings
from herd.timestamps import rfc3339, seconds

Metric = Literal["error_rate", "p99_latency"]
TRACKS: tuple[Track, ...] = ("canary", "stable")
#: A chart's points at most: one per step over the rollout's window.
MAX_POINTS = 240
#: No step shorter than this: Prometheus scrapes every few seconds at best.
MIN_STEP_SECONDS = 5
#: A track's line breaks where samples are further apart than this many steps (no requests).
GAP_STEPS = 1.5
HEADROOM = 1.1


@dataclass(frozen=True)
class Window:
    """The rollout's time span, and the step between two points, in seconds."""

    start: float
    end: float
    step: int
    #: The rollout goes on: the charts gain a point every step with no change of the WebService.
    live: bool = False


def rollout_window(ws: dict[str, Any], now: float) -> Window | None:
    """From status.canary.startTime to now while the rollout goes on, else to when it last
    moved; None before any rollout started."""
    canary = rollout.canary_status(ws)
    start = seconds(canary.get("startTime"))
    if not start:
        return None
    live = canary.get("phase") in ACTIVE
    end = now if live else seconds(canary.get("lastProgressTime")) or now
    end = max(end, start + MIN_STEP_SECONDS)
    step = max(MIN_STEP_SECONDS, math.ceil((end - start) / MAX_POINTS))
    return Window(start, end, step, live)


def prometheus_url(ws: dict[str, Any], flag: str | None) -> str:
    """`herd dashboard --prometheus`, else the WebService's spec.metrics.prometheusURL, else the
    chart's default: the Prometheus the operator asks."""
    if flag:
        return flag
    return ws.get("spec", {}).get("metrics", {}).get("prometheusURL") or Settings.prometheus_url


@dataclass(frozen=True)
class RangeQuery:
    metric: Metric
    track: Track
    promql: str


def range_queries(ws: dict[str, Any], window: Window) -> list[RangeQuery]:
    """Each metric of each track, as the canary analysis asks it (its rate window: the
    analysis interval, or the step when longer, so no request falls between two points)."""
    source_name = ws.get("spec", {}).get("metrics", {}).get("source") or api.METRIC_SOURCES[0]
    source = SOURCES[source_name]
    interval = (rollout.canary_spec(ws).get("analysis") or {}).get("intervalSeconds")
    interval = interval or api.ANALYSIS.properties["intervalSeconds"].default
    rate_window = f"{max(interval, window.step)}s"
    builders: dict[Metric, Callable[[Target], str]] = {
        "error_rate": source.error_rate,
        "p99_latency": source.p99_latency_seconds,
    }
    name, namespace = ws["metadata"]["name"], ws["metadata"]["namespace"]
    route = model.route_of(ws)  # Traefik's series are named after it
    return [
        RangeQuery(metric, track, build(target_behind(route, namespace, name, track, rate_window)))
        for metric, build in builders.items()
        for track in TRACKS
    ]


# --- The charts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One track on a chart: polylines (`x,y x,y ...`) between gaps, and lone points."""

    track: Track
    segments: tuple[str, ...]
    dots: tuple[tuple[str, str], ...]
    latest: str  # the last value, formatted; "no data" without one


@dataclass(frozen=True)
class LineChart:
    title: str
    lines: tuple[Line, ...]
    top: str  # the value at the chart's top edge, formatted
    threshold_y: str | None  # the analysis's limit as a y, when it sets one
    threshold: str
    start: str
    end: str
    width: int
    height: int


def percent(value: float) -> str:
    return f"{value:.2%}"


def milliseconds(value: float) -> str:
    return f"{value * 1000:.0f} ms"


#: Each metric's title, how its values read, and its threshold in spec.canary.analysis (in the
#: metric's unit: the spec's milliseconds made seconds).
METRICS: dict[
    Metric, tuple[str, Callable[[float], str], Callable[[dict[str, Any]], float | None]]
] = {
    "error_rate": ("Error rate", percent, lambda a: a.get("maxErrorRate")),
    "p99_latency": (
        "p99 latency",
        milliseconds,
        lambda a: None if a.get("maxP99LatencyMs") is None else a["maxP99LatencyMs"] / 1000,
    ),
}


def line_chart(
    metric: Metric,
    answers: Mapping[Track, Series],
    window: Window,
    analysis: dict[str, Any],
    width: int = 600,
    height: int = 140,
) -> LineChart:
    """Both tracks of one metric over `window`, scaled to the highest sample or the analysis's
    threshold, whichever is higher; NaN samples and missing ones break a line."""
    title, formatted, threshold_of = METRICS[metric]
    threshold = threshold_of(analysis)
    finite = {
        track: [(t, v) for t, v in answers[track].points if math.isfinite(v)] for track in TRACKS
    }
    values = [v for points in finite.values() for _, v in points]
    # A tenth of headroom over the highest; all zero: the line sits on the bottom edge.
    top = max([*values, threshold or 0.0]) * HEADROOM or 1.0
    span = window.end - window.start

    def xy(t: float, v: float) -> tuple[str, str]:
        return f"{(t - window.start) / span * width:.1f}", f"{height - v / top * height:.1f}"

    lines = []
    for track in TRACKS:
        runs = _runs(answers[track].points, window.step * GAP_STEPS)
        segments = [" ".join(",".join(xy(t, v)) for t, v in run) for run in runs if len(run) > 1]
        dots = [xy(*run[0]) for run in runs if len(run) == 1]
        latest = formatted(finite[track][-1][1]) if finite[track] else "no data"
        lines.append(Line(track, tuple(segments), tuple(dots), latest))
    return LineChart(
        title=title,
        lines=tuple(lines),
        top=formatted(top),
        threshold_y=None if threshold is None else xy(window.start, threshold)[1],
        threshold="" if threshold is None else f"max {formatted(threshold)}",
        start=rfc3339(window.start),
        end=rfc3339(window.end),
        width=width,
        height=height,
    )


def _runs(points: Sequence[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    """The finite samples in runs: a NaN, or a time further than `gap` from the last, ends one."""
    runs: list[list[tuple[float, float]]] = []
    last: float | None = None
    for t, v in points:
        if not math.isfinite(v):
            last = None
            continue
        if last is None or t - last > gap:
            runs.append([])
        runs[-1].append((t, v))
        last = t
    return runs


# --- The section on the page -------------------------------------------------------------------


@dataclass(frozen=True)
class Charts:
    """The page's analysis section: charts, or a note in their place; where the data is from."""

    charts: tuple[LineChart, ...]
    note: str
    source: str
    #: Seconds after which the page asks again (a live rollout's step); None: never.
    refresh_seconds: int | None = None


def proxy_needs(url: str) -> str | None:
    """The right an in-cluster Prometheus needs of the caller, who reaches it through the API
    server's service proxy; None for a URL reached directly."""
    service = in_cluster_service(url)
    if service is None:
        return None
    return f"get on services/proxy for service {service.name} in namespace {service.namespace}"


def source_text(url: str) -> str:
    how = "through the Kubernetes API server's service proxy" if proxy_needs(url) else "directly"
    return f"Prometheus at {redacted(url)}, {how}"


def no_rollout(url: str) -> Charts:
    return Charts(
        (), "No rollout yet: the charts cover a rollout from its start.", source_text(url)
    )


def charts(
    ws: dict[str, Any],
    url: str,
    window: Window,
    answers: Mapping[tuple[Metric, Track], Series],
) -> Charts:
    """The charts of what Prometheus answered, or the note that says why there are none: it
    failed (the first failure's reason; never an answer's body), or no track has any sample."""
    source = source_text(url)
    refresh = window.step if window.live else None
    failed = [a for a in answers.values() if a.kind in ("unreachable", "invalid")]
    if failed or len(answers) < len(METRICS) * len(TRACKS):
        reason = failed[0].detail if failed else "not every query was answered"
        needs = proxy_needs(url)
        hint = f" (reading it through the API server needs {needs})" if needs else ""
        return Charts((), f"Prometheus could not be read: {reason}{hint}.", source, refresh)
    if not any(a.kind == "value" for a in answers.values()):
        note = "Prometheus has no data for either track over this rollout."
        return Charts((), note, source, refresh)
    analysis = rollout.canary_spec(ws).get("analysis") or {}
    drawn = tuple(
        line_chart(metric, {t: answers[(metric, t)] for t in TRACKS}, window, analysis)
        for metric in METRICS
    )
    return Charts(drawn, "", source, refresh)
