"""The pure side of the rollout commands: views of a WebService's rollout, durations, which
requests make sense in which phase, what a wait ends with, and the intent a command writes.
`herd.rollout.cli` runs them against the cluster."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from herd import api, model
from herd.api_errors import ApiError
from herd.rollout.machine import APPLIES_IN, TERMINAL
from herd.timestamps import rfc3339

EXIT_OK = 0
EXIT_FAILED = 1  # an error, a refused request, or a rollout that ended otherwise than awaited
#: The permissions a refused read or write lacks, as the CLI and the dashboard name them.
READ_NEEDS = "get and list on webservices.herd.dev: the herd-view or herd-promoter ClusterRole"
WRITE_NEEDS = "patch on webservices.herd.dev/status: the herd-promoter ClusterRole"

_LABEL_WIDTH = len("Last request:  ")  # the longest label of the status view


@dataclass(frozen=True)
class Outcome:
    """How a wait ended: the exit code and what to tell the user."""

    code: int
    message: str


# --- Durations ---------------------------------------------------------------------------------


def parse_duration(text: str) -> int:
    """Seconds in a command-line duration: 90, 30s, 10m, 1h30m (an argparse `type`)."""
    try:
        return model.duration_seconds(text)
    except model.InvalidSpec as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def format_duration(seconds: float) -> str:
    """600 -> 10m, 90 -> 1m30s: the way users wrote it."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


# --- Reading a WebService ----------------------------------------------------------------------


def canary_status(ws: dict[str, Any]) -> dict[str, Any]:
    return ws.get("status", {}).get("canary") or {}


def canary_spec(ws: dict[str, Any]) -> dict[str, Any]:
    return ws.get("spec", {}).get("canary") or {}


def canary_plan(ws: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps the rollout runs: spec.canary.steps, or an A/B test's two (herd.model.plan)."""
    return model.plan(canary_spec(ws))


def phase_of(ws: dict[str, Any]) -> str | None:
    return canary_status(ws).get("phase")


def condition(ws: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(
        (c for c in ws.get("status", {}).get("conditions", []) if c.get("type") == kind), {}
    )


def observed(ws: dict[str, Any]) -> bool:
    """Does the rollout status describe the latest spec? Until then the phase may be the previous
    rollout's: a Succeeded from yesterday must not end today's `--wait Succeeded`. The canary
    controller's own `status.canary.observedGeneration` says so exactly; without it (an older
    operator), `status.observedGeneration` still leaves one canary tick after a change open."""
    status = ws.get("status", {})
    seen = canary_status(ws).get("observedGeneration", status.get("observedGeneration", -1))
    return seen >= ws.get("metadata", {}).get("generation", 0)


def describe_step(step: dict[str, Any]) -> str:
    """A step of spec.canary.steps as users write it: setWeight 10, pause 60s, pause until
    promote, setHeaderRoute X-Canary: on, setCookieRoute canary, an A/B test's 3 passing
    analyses."""
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    if "setHeaderRoute" in step:
        header = step["setHeaderRoute"]
        value = header.get("value", model.ALWAYS)
        return f"setHeaderRoute {header.get('name')}: {value}"
    if "setCookieRoute" in step:
        return f"setCookieRoute {step['setCookieRoute'].get('name')}"
    if model.AB_TEST_PASSES in step:
        return f"wait for {step[model.AB_TEST_PASSES]} passing analyses"
    duration = (step.get("pause") or {}).get("duration")
    if duration is None:
        return "pause until promote"
    return f"pause {duration}s" if str(duration).isdigit() else f"pause {duration}"


def step_position(canary: dict[str, Any]) -> str:
    """The current step as 1-based x/N; past the last step (done), N/N."""
    index, total = canary.get("stepIndex"), canary.get("steps")
    if index is None or not total:
        return "-"
    return f"{min(index + 1, total)}/{total}"


def current_step(ws: dict[str, Any]) -> str:
    """The current step's position and what it does, e.g. `3/4 pause until promote`."""
    canary = canary_status(ws)
    position = step_position(canary)
    steps = canary_plan(ws)
    index = canary.get("stepIndex")
    if index is not None and 0 <= index < len(steps):
        return f"{position} {describe_step(steps[index])}"
    return position


def match_text(match: dict[str, Any]) -> str:
    """The requests status.canary.match pins to the canary: `header X-Canary: on`."""
    if match.get("kind") == "cookie":
        return f"cookie {match.get('name')}={model.ALWAYS}"
    return f"header {match.get('name')}: {match.get('value', model.ALWAYS)}"


def weight_text(canary: dict[str, Any]) -> str:
    weight = canary.get("weight")
    return "-" if weight is None else f"{weight}%"


def summary(ws: dict[str, Any]) -> str:
    """One line on the rollout, for progress logs and command results."""
    canary = canary_status(ws)
    if not canary:
        return "no canary rollout yet"
    parts = [canary.get("phase") or "-"]
    position = step_position(canary)
    if position != "-":
        parts.append(f"step {position}")
    if canary.get("weight") is not None:
        parts.append(f"weight {canary['weight']}%")
    if canary.get("match"):
        parts.append(f"pinned {match_text(canary['match'])}")
    message = canary.get("message") or canary.get("pausedReason")
    return f"{', '.join(parts)}: {message}" if message else ", ".join(parts)


# --- Views -------------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    """Columns as kubectl prints them: left-aligned, three spaces apart."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        indent + "   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in (headers, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


LIST_HEADERS = ("NAME", "READY", "REPLICAS", "WORKERS", "PHASE", "STEP", "WEIGHT", "URL")


def list_row(ws: dict[str, Any], with_namespace: bool) -> list[str]:
    status, canary = ws.get("status", {}), canary_status(ws)
    row = [
        ws["metadata"]["name"],
        condition(ws, "Ready").get("status", "-"),
        f"{status.get('readyReplicas', 0)}/{ws.get('spec', {}).get('replicas', 0)}",
        str(status.get("server", {}).get("workers", "-")),
        canary.get("phase") or "-",
        step_position(canary),
        weight_text(canary),
        status.get("url") or "-",
    ]
    return [ws["metadata"]["namespace"], *row] if with_namespace else row


def format_list(items: Sequence[dict[str, Any]], all_namespaces: bool) -> str:
    ordered = sorted(items, key=lambda ws: (ws["metadata"]["namespace"], ws["metadata"]["name"]))
    headers = ("NAMESPACE", *LIST_HEADERS) if all_namespaces else LIST_HEADERS
    return format_table(headers, [list_row(ws, all_namespaces) for ws in ordered])


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    """`Label:  value` lines with the values aligned; a value's further lines indented to it."""
    lines = []
    for label, value in pairs:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{label + ':':<{_LABEL_WIDTH}}{first}".rstrip())
        lines.extend(" " * _LABEL_WIDTH + line for line in rest)
    return "\n".join(lines) + "\n"


def _threshold(text: str, limit: str | None) -> str:
    return f"{text} ({limit})" if limit else text


def analysis_text(last: dict[str, Any], analysis: dict[str, Any]) -> str:
    """The last analysis against the thresholds of spec.canary.analysis."""
    lines = [f"{last.get('verdict', '-')} at {last.get('time', '-')}"]
    if "requests" in last:
        minimum = analysis.get("minRequests")
        lines.append(
            _threshold(
                f"requests     {last['requests']:g}",
                None if minimum is None else f"inconclusive below {minimum}",
            )
        )
    if "errorRate" in last:
        maximum = analysis.get("maxErrorRate")
        lines.append(
            _threshold(
                f"error rate   {last['errorRate']:.2%}",
                None if maximum is None else f"max {maximum:.2%}",
            )
        )
    if "p99LatencyMs" in last:
        maximum = analysis.get("maxP99LatencyMs")
        limit = None
        if maximum is not None:
            limit = f"max {maximum} ms" if maximum else "not checked"  # 0 skips the check
        lines.append(_threshold(f"p99 latency  {last['p99LatencyMs']:g} ms", limit))
    if last.get("message"):
        lines.append(last["message"])
    lines.extend(
        f"{check.get('verdict', '-'):<13}{check.get('name', '-')}: {check.get('message', '')}"
        for check in last.get("checks") or ()
    )
    return "\n".join(lines)


def intent_text(ws: dict[str, Any]) -> str | None:
    intent = ws.get("status", {}).get("intent")
    if not intent:
        return None
    state = "done" if canary_status(ws).get("handledIntent") == intent.get("id") else "pending"
    by = f" by {intent['by']}" if intent.get("by") else ""
    return f"{intent.get('action')}{by} at {intent.get('requestedAt', '-')}: {state}"


def _canary_fields(ws: dict[str, Any]) -> list[tuple[str, str]]:
    spec, canary = canary_spec(ws), canary_status(ws)
    if not spec and not canary:
        return [("Canary", "none: changes roll out as plain rolling updates (no spec.canary)")]
    if not canary:
        plan = ", ".join(describe_step(s) for s in canary_plan(ws))
        return [("Canary", "no rollout yet"), ("Steps", plan)]
    analysis = spec.get("analysis") or {}
    phase = canary.get("phase") or "-"
    if canary.get("pausedReason"):
        phase += f" ({canary['pausedReason']})"
    failure_limit = analysis.get("failureLimit")
    checks = f"{canary.get('failedChecks', 0)} failed"
    if failure_limit is not None:
        checks += f" (rolls back at {failure_limit})"
    checks += f", {canary.get('inconclusiveChecks', 0)} inconclusive"
    stable = canary.get("stableRevision", "-")
    fields = [
        ("Phase", phase),
        ("Revisions", f"stable {stable}, canary {canary.get('canaryRevision', '-')}"),
        ("Step", current_step(ws)),
        ("Weight", f"{weight_text(canary)} of traffic on the canary"),
        *(
            [("Pinned", f"requests with {match_text(canary['match'])}, whatever the weight")]
            if canary.get("match")
            else []
        ),
        ("Checks", checks),
    ]
    if canary.get("lastAnalysis"):
        fields.append(("Analysis", analysis_text(canary["lastAnalysis"], analysis)))
    optional = (("Message", canary.get("message")), ("Started", canary.get("startTime")))
    fields.extend((label, value) for label, value in optional if value)
    return fields


def format_status(ws: dict[str, Any]) -> str:
    """The readable view of `herd status`."""
    metadata, status = ws["metadata"], ws.get("status", {})
    ready = condition(ws, "Ready")
    fields = [
        ("Name", f"{metadata['namespace']}/{metadata['name']}"),
        ("Ready", f"{ready.get('status', '-')}  {ready.get('message', '')}".strip()),
        ("URL", status.get("url") or "-"),
        *_canary_fields(ws),
    ]
    request = intent_text(ws)
    if request is not None:
        fields.append(("Last request", request))
    text = _fields(fields)
    conditions = status.get("conditions") or []
    if conditions:
        rows = [
            [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")]
            for c in conditions
        ]
        text += "Conditions:\n" + format_table(
            ("TYPE", "STATUS", "REASON", "MESSAGE"), rows, indent="  "
        )
    return text


def view(ws: dict[str, Any], output: str) -> str:
    """The status view, or the object as stored (minus managedFields) for scripts."""
    if output == "table":
        return format_status(ws)
    metadata = {k: v for k, v in ws.get("metadata", {}).items() if k != "managedFields"}
    document = {**ws, "metadata": metadata}
    if output == "json":
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False)


# --- Decisions ---------------------------------------------------------------------------------


def refusal(action: str, phase: str | None) -> str | None:
    """Why `action` makes no sense in `phase` (None: no rollout has ever run), or None."""
    if phase in APPLIES_IN[action] or (phase is not None and phase not in api.PHASES):
        return None
    if action == "retry":
        if phase is None:
            return "nothing to retry: no canary rollout has run"
        return f"retry restarts a rolled back or aborted rollout, and this one is {phase}"
    if phase is None:
        return "no canary rollout in progress: none has started"
    if phase in TERMINAL:
        return f"no canary rollout in progress: the last one is {phase}"
    if action == "resume":
        return f"the rollout is not paused but {phase}"
    if phase == "Paused":
        return "the rollout is already paused"
    return f"the rollout is already {phase}: past its steps"


def wait_outcome(ws: dict[str, Any] | None, want: str) -> Outcome | None:
    """Whether `status --wait want` is over, and how; None: keep waiting."""
    if ws is None:
        return Outcome(EXIT_FAILED, "was deleted")
    if not canary_spec(ws):
        return Outcome(EXIT_FAILED, "has no spec.canary: its changes roll out without phases")
    if not observed(ws):
        return None
    phase = phase_of(ws)
    if phase == want:
        return Outcome(EXIT_OK, f"reached {want}: {summary(ws)}")
    if phase in TERMINAL:
        return Outcome(EXIT_FAILED, f"ended {phase}, not {want}: {summary(ws)}")
    return None


def timeout_message(ws: dict[str, Any] | None, want: str, timeout: float) -> str:
    waited = f"timed out after {format_duration(timeout)} waiting for {want}"
    if ws is None:
        return waited
    if not observed(ws):
        generation = ws.get("metadata", {}).get("generation")
        return f"{waited}: the operator has not observed generation {generation} yet"
    return f"{waited}: {summary(ws)}"


def new_intent(action: str, intent_id: str, now: datetime, by: str) -> dict[str, str]:
    return {
        "action": action,
        "id": intent_id,
        "requestedAt": rfc3339(now.timestamp()),
        "by": by,
    }


def intent_handled(ws: dict[str, Any], intent_id: str) -> bool:
    return canary_status(ws).get("handledIntent") == intent_id


def _unreachable_reason(message: str) -> str:
    """`Connection refused` out of urllib3's nested `Max retries exceeded (Caused by ...)`."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", message)
    return found.group(1).strip() if found else message


def api_error_message(error: ApiError, server: str, needs: str) -> str:
    """One line for a failed request; `needs` names the permission a 403 lacks."""
    if error.status == 0:
        message = (
            f"cannot reach the Kubernetes API at {server}: {_unreachable_reason(error.message)}"
        )
    elif error.status == 401:
        message = f"the Kubernetes API at {server} refused the credentials (401 Unauthorized)"
    elif error.status == 403:
        message = f"forbidden: {error.message} (needs {needs})"
    elif error.status == 404:  # a get of a missing object is no error: the API is not served
        message = f"not found: {error.message} (is Herd's WebService CRD installed?)"
    else:
        message = f"the Kubernetes API answered {error.status} {error.reason}: {error.message}"
    return " ".join(message.split())  # the client's own errors span lines
