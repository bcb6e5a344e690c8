"""What the dashboard's pages show and allow, as plain values: the list's rows, a rollout's
steps as a timeline, the weights and analyses the dashboard has seen, the autoscaler's
decisions, which actions are allowed and why not, the server-sent events, and the checks that
keep other sites out. Pure: `herd.dashboard.app` reads the cluster and serves these."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from herd.api import IntentAction
from herd.rollout import views as rollout
from herd.timestamps import rfc3339

#: The WebService page's actions, in order, with their buttons' labels.
ACTIONS: tuple[tuple[IntentAction, str], ...] = (
    ("promote", "Promote"),
    ("promote-full", "Promote fully"),
    ("pause", "Pause"),
    ("resume", "Resume"),
    ("abort", "Abort"),
    ("retry", "Retry"),
)
#: What the dashboard keeps per WebService, so a long-open dashboard stays small.
MAX_WEIGHT_SAMPLES = 500
MAX_ANALYSES = 50
#: What a page shows at most.
MAX_EVENTS = 20
MAX_RECOMMENDATIONS = 10

# --- The list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One WebService on the list page; also the payload of its live updates."""

    key: str
    namespace: str
    name: str
    href: str
    ready: str
    replicas: str
    workers: str
    phase: str
    step: str
    weight: str
    verdict: str


#: The list's columns: the Row field each shows, and its heading.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("ready", "Ready"),
    ("replicas", "Replicas"),
    ("workers", "Workers"),
    ("phase", "Phase"),
    ("step", "Step"),
    ("weight", "Weight"),
    ("verdict", "Last analysis"),
)


def key_of(ws: dict[str, Any]) -> str:
    return f"{ws['metadata']['namespace']}/{ws['metadata']['name']}"


def href(namespace: str, name: str) -> str:
    return f"/webservices/{quote(namespace, safe='')}/{quote(name, safe='')}"


def workers_text(ws: dict[str, Any]) -> str:
    """The resolved worker class and processes, e.g. `uvicorn × 4`."""
    server = ws.get("status", {}).get("server") or {}
    worker_class, workers = server.get("workerClass"), server.get("workers")
    if worker_class and workers:
        return f"{worker_class} × {workers}"
    return str(worker_class or workers or "-")


def row(ws: dict[str, Any]) -> Row:
    metadata, status, canary = ws["metadata"], ws.get("status", {}), rollout.canary_status(ws)
    return Row(
        key=key_of(ws),
        namespace=metadata["namespace"],
        name=metadata["name"],
        href=href(metadata["namespace"], metadata["name"]),
        ready=rollout.condition(ws, "Ready").get("status", "-"),
        replicas=f"{status.get('readyReplicas', 0)}/{ws.get('spec', {}).get('replicas', 0)}",
        workers=workers_text(ws),
        phase=canary.get("phase") or "-",
        step=rollout.step_position(canary),
        weight=rollout.weight_text(canary),
        verdict=(canary.get("lastAnalysis") or {}).get("verdict") or "-",
    )


def rows(items: Sequence[dict[str, Any]]) -> list[Row]:
    return sorted((row(ws) for ws in items), key=lambda r: (r.namespace, r.name))


# --- The WebService page -----------------------------------------------------------------------

StepState = Literal["done", "current", "stopped", "pending"]


@dataclass(frozen=True)
class Step:
    number: int
    text: str
    state: StepState


def timeline(ws: dict[str, Any]) -> list[Step]:
    """spec.canary.steps (or an A/B test's), each done, current, pending, or where a rolled
    back or aborted rollout stopped."""
    steps = rollout.canary_plan(ws)
    canary = rollout.canary_status(ws)
    phase, index = canary.get("phase"), canary.get("stepIndex")

    def state(i: int) -> StepState:
        if phase in ("Succeeded", "Promoting"):
            return "done"
        if phase is None or index is None or i > index:
            return "pending"
        if i < index:
            return "done"
        return "stopped" if phase in ("RolledBack", "Aborted") else "current"

    return [Step(i + 1, rollout.describe_step(s), state(i)) for i, s in enumerate(steps)]


def overview(ws: dict[str, Any]) -> list[tuple[str, str]]:
    """The page's summary fields, as `herd status` has them."""
    status, canary = ws.get("status", {}), rollout.canary_status(ws)
    ready = rollout.condition(ws, "Ready")
    fields = [
        ("Ready", f"{ready.get('status', '-')}  {ready.get('message', '')}".strip()),
        ("URL", status.get("url") or "-"),
        ("Replicas", row(ws).replicas),
        ("Workers", workers_text(ws)),
    ]
    if not rollout.canary_spec(ws):
        return [*fields, ("Canary", "none: changes roll out as plain rolling updates")]
    phase = canary.get("phase") or "no rollout yet"
    if canary.get("pausedReason"):
        phase += f" ({canary['pausedReason']})"
    fields += [
        ("Phase", phase),
        ("Step", rollout.current_step(ws)),
        ("Weight", rollout.weight_text(canary)),
    ]
    if canary.get("stableRevision") or canary.get("canaryRevision"):
        revisions = f"stable {canary.get('stableRevision', '-')}, "
        fields.append(("Revisions", revisions + f"canary {canary.get('canaryRevision', '-')}"))
    if canary.get("message"):
        fields.append(("Message", canary["message"]))
    request = rollout.intent_text(ws)
    if request is not None:
        fields.append(("Last request", request))
    return fields


@dataclass(frozen=True)
class Permission:
    """May this identity write rollout intents here, and if not, why not."""

    allowed: bool
    reason: str = ""


def write_permission(allowed: bool, reason: str, namespace: str) -> Permission:
    """A SelfSubjectAccessReview's answer for `patch webservices/status`, for people."""
    if allowed:
        return Permission(True)
    why = f"your identity may not patch webservices/status in {namespace}"
    why += f" (needs {rollout.WRITE_NEEDS})"
    return Permission(False, f"{why}: {reason}" if reason else why)


@dataclass(frozen=True)
class Action:
    action: IntentAction
    label: str
    enabled: bool
    reason: str


def actions(ws: dict[str, Any], permission: Permission) -> list[Action]:
    """Every action, enabled when the identity may write intents and the phase admits it (the
    same refusals as the CLI's), else disabled with the reason."""
    phase = rollout.phase_of(ws)
    found = []
    for action, label in ACTIONS:
        reason = permission.reason if not permission.allowed else rollout.refusal(action, phase)
        found.append(Action(action, label, not reason, reason or ""))
    return found


@dataclass(frozen=True)
class History:
    """What the dashboard saw of a WebService since it started: status keeps only the current
    weight and the last analysis."""

    weights: tuple[tuple[float, int], ...] = ()
    analyses: tuple[dict[str, Any], ...] = ()


def observe(history: History, ws: dict[str, Any], now: float) -> History:
    """`history` with this version of the WebService: a weight sample when the weight changed,
    the last analysis when it is a new one."""
    canary = rollout.canary_status(ws)
    weights, analyses = history.weights, history.analyses
    weight = canary.get("weight")
    if weight is not None and (not weights or weights[-1][1] != weight):
        weights = (*weights, (now, weight))[-MAX_WEIGHT_SAMPLES:]
    last = canary.get("lastAnalysis")
    if last and (not analyses or analyses[-1] != last):
        analyses = (*analyses, last)[-MAX_ANALYSES:]
    return History(weights, analyses)


@dataclass(frozen=True)
class Chart:
    """The weight over time as an SVG polyline (a step line: a weight holds until the next)."""

    points: str
    start: str
    end: str
    width: int
    height: int


def weight_chart(
    weights: Sequence[tuple[float, int]], now: float, width: int = 600, height: int = 120
) -> Chart | None:
    if not weights:
        return None
    start = weights[0][0]
    end = max(now, start + 1.0)  # a weight first seen now still shows as a line
    span = end - start

    def x(t: float) -> str:
        return f"{(t - start) / span * width:.1f}"

    def y(weight: int) -> str:
        return f"{height - weight / 100 * height:.1f}"

    points = []
    for (t, weight), until in zip(weights, [*(t for t, _ in weights[1:]), end], strict=True):
        points += [f"{x(t)},{y(weight)}", f"{x(until)},{y(weight)}"]
    return Chart(" ".join(points), rfc3339(start), rfc3339(end), width, height)


@dataclass(frozen=True)
class AnalysisRow:
    time: str
    verdict: str
    requests: str
    error_rate: str
    p99: str
    message: str


def analysis_rows(history: History, ws: dict[str, Any]) -> list[AnalysisRow]:
    """The analyses seen, newest first, against spec.canary.analysis's thresholds."""
    limits = rollout.canary_spec(ws).get("analysis") or {}

    def limit(text: str, bound: str | None) -> str:
        return f"{text} ({bound})" if bound else text

    found = []
    for analysis in reversed(history.analyses):
        error_rate, p99 = analysis.get("errorRate"), analysis.get("p99LatencyMs")
        max_rate, max_p99 = limits.get("maxErrorRate"), limits.get("maxP99LatencyMs")
        requests = analysis.get("requests")
        found.append(
            AnalysisRow(
                time=analysis.get("time", "-"),
                verdict=analysis.get("verdict", "-"),
                requests="-" if requests is None else f"{requests:g}",
                error_rate="-"
                if error_rate is None
                else limit(
                    f"{error_rate:.2%}", None if max_rate is None else f"max {max_rate:.2%}"
                ),
                p99="-"
                if p99 is None
                else limit(f"{p99:g} ms", f"max {max_p99} ms" if max_p99 else None),
                message=analysis.get("message", ""),
            )
        )
    return found


@dataclass(frozen=True)
class Autoscaling:
    fields: list[tuple[str, str]]
    recommendations: list[tuple[str, int]]


def autoscaling(ws: dict[str, Any]) -> Autoscaling | None:
    """The built-in autoscaler's last decision and its recent recommendations, newest first;
    None when it records nothing (no spec.autoscaling, or KEDA's)."""
    status = ws.get("status", {}).get("autoscaling")
    if not status:
        return None
    labelled = (
        ("Desired replicas", status.get("desiredReplicas")),
        ("Reason", status.get("reason")),
        ("Message", status.get("message")),
        ("Requests/min", None if "currentRPM" not in status else f"{status['currentRPM']:g}"),
        ("Error rate", None if "errorRate" not in status else f"{status['errorRate']:.2%}"),
        ("Utilization", None if "utilization" not in status else f"{status['utilization']:.0%}"),
        ("Last panic", status.get("lastPanicTime")),
        ("Last scaled", status.get("lastScaleTime")),
    )
    recent = sorted(status.get("recommendations") or [], key=lambda r: -r.get("time", 0))
    return Autoscaling(
        [(label, str(value)) for label, value in labelled if value is not None],
        [(rfc3339(r["time"]), r["replicas"]) for r in recent[:MAX_RECOMMENDATIONS]],
    )


def conditions(ws: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            c.get("type", ""),
            c.get("status", ""),
            c.get("reason", ""),
            c.get("message", ""),
            c.get("lastTransitionTime", ""),
        )
        for c in ws.get("status", {}).get("conditions") or []
    ]


@dataclass(frozen=True)
class EventRow:
    time: str
    type: str
    reason: str
    message: str
    count: int


def event_rows(events: Sequence[dict[str, Any]]) -> list[EventRow]:
    """Events about the WebService, newest first (core/v1 Events name their time in one of
    three fields, depending on who wrote them)."""

    def time(event: dict[str, Any]) -> str:
        return (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
            or ""
        )

    ordered = sorted(events, key=time, reverse=True)[:MAX_EVENTS]
    return [
        EventRow(
            time(e),
            e.get("type", ""),
            e.get("reason", ""),
            e.get("message", ""),
            e.get("count") or (e.get("series") or {}).get("count") or 1,
        )
        for e in ordered
    ]


# --- Live updates ------------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event (JSON on one line: `data:` may not span lines unprefixed)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def change_message(change: str, ws: dict[str, Any]) -> str:
    """What the pages get when a watch reports a WebService ADDED, MODIFIED or DELETED: its row
    (the list redraws it; the WebService page reloads its content when the key is its own)."""
    kind = "deleted" if change == "DELETED" else "changed"
    return sse("webservice", {"type": kind, "key": key_of(ws), "row": asdict(row(ws))})


def problem_message(message: str | None) -> str:
    """The watch failing (message) or back (None): a banner on every page."""
    return sse("problem", {"message": message})


# --- Requests from other sites -----------------------------------------------------------------

#: Addresses that only this machine reaches, where `localhost` names the same server.
LOOPBACK = ("127.0.0.1", "::1")
#: Binding these would leave the Host check nothing to compare with.
WILDCARD = ("0.0.0.0", "::", "")


def allowed_hosts(address: str, port: int) -> frozenset[str]:
    """The Host headers a browser sends for this server. Anything else is another name that
    resolves here (DNS rebinding: a page from elsewhere reading the dashboard as its own
    origin), so it is refused."""
    host = f"[{address}]" if ":" in address else address
    hosts = {f"{host}:{port}"}
    if address in LOOPBACK:
        hosts.add(f"localhost:{port}")
    return frozenset(hosts)


def host_refusal(host: str | None, allowed: frozenset[str]) -> str | None:
    if host is None or host.lower() not in allowed:
        return f"Host {host!r} is not this dashboard's address ({', '.join(sorted(allowed))})"
    return None


def action_refusal(
    origin: str | None, host: str, form_token: str | None, cookie_token: str | None, token: str
) -> str | None:
    """Why an action request is refused, or None. Browsers send Origin with every POST; a page
    of another origin cannot read the form's token, and a SameSite=Strict cookie is not sent
    with a request another site starts."""
    if origin is None:
        return "the request has no Origin header"
    parts = urlsplit(origin)
    if parts.scheme != "http" or parts.netloc.lower() != host.lower():
        return f"the request comes from another origin ({origin})"
    if not (form_token and cookie_token):
        return "the request lacks the dashboard's token: reload the page"
    if not (hmac.compare_digest(form_token, token) and hmac.compare_digest(cookie_token, token)):
        return "the request's token is not this dashboard's: reload the page"
    return None


def http_status(api_status: int | None) -> int:
    """The dashboard's answer to a failed request: the API server's 401, 403 and 404 as they
    are, 502 when it failed or could not be reached, 409 when Herd refused an action that makes
    no sense in the rollout's phase."""
    if api_status is None:
        return 409
    if api_status in (401, 403, 404):
        return api_status
    return 502
