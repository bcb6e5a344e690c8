"""The canary state machine and its analysis verdicts. Pure: (spec, state, what was observed)
-> (next state, events). All state lives in `status.canary`, so a restarted operator resumes
exactly where it was.

The phases and intent actions are the API's (`herd.api.Phase`, `herd.api.IntentAction`);
`APPLIES_IN` says which intent acts in which phase, for this machine and the CLI alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from herd.api import IntentAction, Phase
from herd.model import CanarySpec, CanaryStep, RequestMatch
from herd.rollout.analysis import Check, Verdict
from herd.timestamps import rfc3339, seconds

ACTIVE: frozenset[Phase] = frozenset({"Progressing", "Paused", "Promoting"})
#: Ended without promoting: the revision was rejected, until the spec changes or `herd retry`.
REJECTED: frozenset[Phase] = frozenset({"RolledBack", "Aborted"})
TERMINAL: frozenset[Phase] = frozenset({"Succeeded", *REJECTED})
#: The phases in which each intent acts; in any other it is ignored with an event.
APPLIES_IN: dict[IntentAction, frozenset[Phase]] = {
    "promote": frozenset({"Progressing", "Paused"}),
    "promote-full": frozenset({"Progressing", "Paused"}),
    "abort": ACTIVE,
    "pause": frozenset({"Progressing"}),
    "resume": frozenset({"Paused"}),
    "retry": REJECTED,
}
#: Consecutive inconclusive checks (no traffic, NaN, too few requests) that pause a rollout:
#: no data is never a pass, and waiting forever silently is no answer either.
INCONCLUSIVE_LIMIT = 3
WAITING_FOR_PROMOTE = "waiting for herd promote"


@dataclass(frozen=True)
class Intent:
    action: IntentAction
    id: str


@dataclass(frozen=True)
class World:
    """What the shell observed this tick."""

    now: float
    canary_revision: str  # the pod template the spec asks for
    stable_revision: str  # the pod template the stable version runs
    canary_ready: bool  # the canary Deployment has all its replicas ready
    stable_promoted: bool  # the stable Deployment runs canary_revision, fully rolled out
    verdict: Verdict | None = None  # an analysis, when one was due
    intent: Intent | None = None  # a user intent not handled yet


@dataclass(frozen=True)
class State:
    phase: Phase | None = None
    step_index: int = 0
    steps: int = 0
    weight: int = 0
    #: Requests pinned to the canary beside the weight (a setHeaderRoute or setCookieRoute
    #: step), from the step until the rollout ends.
    match: RequestMatch | None = None
    stable_revision: str = ""
    canary_revision: str = ""
    failed_checks: int = 0
    inconclusive_checks: int = 0
    passed_in_step: bool = False
    passed_checks: int = 0  # in the current step: an A/B test's count
    paused_reason: str = ""
    message: str = ""
    start_time: float = 0.0
    step_started: float = 0.0
    last_progress: float = 0.0
    last_analysis_time: float = 0.0
    last_analysis: dict[str, Any] = field(default_factory=dict)
    handled_intent: str = ""

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE


Event = tuple[str, str, str]  # (type, reason, message)


def moves_with_time(status: dict[str, Any]) -> bool:
    """Whether a tick of the clock can move this rollout (its WebService's status): it is
    under way, or a user's intent waits. Anything else moves only with a change to the spec or
    a child, which triggers a reconcile of its own."""
    canary = status.get("canary") or {}
    intent = status.get("intent") or {}
    waiting = bool(intent.get("id")) and intent.get("id") != canary.get("handledIntent")
    return canary.get("phase") in ACTIVE or waiting


def _current(spec: CanarySpec, state: State) -> CanaryStep:
    return spec.steps[min(state.step_index, len(spec.steps) - 1)]


def analysis_due(spec: CanarySpec, state: State, now: float) -> bool:
    """Every intervalSeconds while the canary has traffic, paused or not: a canary failing
    while it waits for `herd promote` is rolled back, not left with its share. Requests a
    header route pins at weight 0 (smoke tests) are judged only in an A/B test, whose step
    waits for passing analyses; elsewhere the first weight judges them with the rest."""
    judged = state.weight > 0 or _current(spec, state).passes is not None
    return (
        state.phase in ("Progressing", "Paused")
        and judged
        and now - state.last_analysis_time >= spec.analysis.interval_seconds
    )


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """The canary follows its traffic share; one replica at least, to be ready before weight."""
    return max(1, math.ceil(stable_replicas * weight / 100))


def _start(spec: CanarySpec, world: World, handled: str) -> State:
    return State(
        phase="Progressing",
        steps=len(spec.steps),
        stable_revision=world.stable_revision,
        canary_revision=world.canary_revision,
        start_time=world.now,
        step_started=world.now,
        last_progress=world.now,
        handled_intent=handled,
        message=f"rollout of {world.canary_revision} started",
    )


def _advance(spec: CanarySpec, state: State, now: float) -> State:
    index = state.step_index + 1
    if index >= len(spec.steps):
        return replace(
            state,
            phase="Promoting",
            step_index=len(spec.steps),
            last_progress=now,
            message="all steps passed: promoting",
            paused_reason="",
        )
    return replace(
        state,
        step_index=index,
        step_started=now,
        last_progress=now,
        passed_in_step=False,
        passed_checks=0,
        message=f"step {index + 1}/{len(spec.steps)}",
    )


def _end(state: State, phase: Phase, message: str) -> State:
    return replace(state, phase=phase, weight=0, match=None, message=message, paused_reason="")


def _record(state: State, verdict: Verdict, now: float) -> State:
    analysis = {"time": now, "verdict": verdict.result, "message": verdict.message}
    for key, value in (
        ("requests", verdict.requests),
        ("errorRate", verdict.error_rate),
        ("p99LatencyMs", verdict.p99_latency_ms),
    ):
        if value is not None:
            analysis[key] = round(value, 4)
    if verdict.checks:
        analysis["checks"] = [_check_status(check) for check in verdict.checks]
    return replace(state, last_analysis_time=now, last_analysis=analysis)


def _check_status(check: Check) -> dict[str, Any]:
    out: dict[str, Any] = {"name": check.name, "verdict": check.result, "message": check.message}
    for key, value in (("value", check.value), ("stable", check.stable)):
        if value is not None:
            out[key] = round(value, 6)
    return out


def _progress_mark(spec: CanarySpec, state: State) -> float:
    """Since when the rollout has been making no progress. A timed pause is planned waiting,
    not a stall: the deadline counts from its end, so a pause longer than the deadline never
    rolls back a healthy canary."""
    current = _current(spec, state)
    if current.is_pause and current.pause_seconds is not None:
        return max(state.last_progress, state.step_started + current.pause_seconds)
    return state.last_progress


def _failed(spec: CanarySpec, state: State, verdict: Verdict) -> tuple[State, list[Event]]:
    """A failed analysis: counted, and the rollback once failureLimit is reached."""
    failed = state.failed_checks + 1
    state = replace(state, failed_checks=failed, inconclusive_checks=0)
    if failed >= spec.analysis.failure_limit:
        message = f"rolled back after {failed} failed checks: {verdict.message}"
        return _end(state, "RolledBack", message), [("Warning", "RolledBack", message)]
    return state, [("Warning", "AnalysisFailed", verdict.message)]


def _apply_intent(spec: CanarySpec, state: State, world: World) -> tuple[State, list[Event]]:
    intent = world.intent
    assert intent is not None
    state = replace(state, handled_intent=intent.id)
    if state.phase not in APPLIES_IN[intent.action]:
        if not state.active:
            return state, [("Warning", "IntentIgnored", f"{intent.action}: no rollout in progress")]
        return state, [
            ("Warning", "IntentIgnored", f"{intent.action} does not apply in phase {state.phase}")
        ]
    if intent.action == "retry":
        return _start(spec, world, intent.id), [("Normal", "Retrying", "rollout restarted")]
    if intent.action == "abort":
        return _end(state, "Aborted", "aborted by herd abort"), [
            ("Warning", "Aborted", "rollout aborted: traffic back on the stable version")
        ]
    if intent.action == "promote-full":
        return replace(
            state,
            phase="Promoting",
            step_index=len(spec.steps),
            paused_reason="",
            last_progress=world.now,
            message="promoted (full): skipping the steps",
        ), [("Normal", "Promoting", "herd promote --full: promoting")]
    if intent.action == "promote":
        state = replace(state, phase="Progressing", paused_reason="", inconclusive_checks=0)
        return _advance(spec, state, world.now), [("Normal", "Promoted", "moved to the next step")]
    if intent.action == "pause":
        return replace(state, phase="Paused", paused_reason="paused by herd pause"), [
            ("Normal", "Paused", "paused by herd pause")
        ]
    resumed = replace(
        state, phase="Progressing", paused_reason="", inconclusive_checks=0, last_progress=world.now
    )
    if spec.steps[state.step_index].is_pause and state.paused_reason == WAITING_FOR_PROMOTE:
        resumed = _advance(spec, resumed, world.now)
    return resumed, [("Normal", "Resumed", "rollout resumed")]


def step(spec: CanarySpec, state: State, world: World) -> tuple[State, list[Event]]:
    """One tick of the rollout."""
    events: list[Event] = []
    rollout_wanted = world.canary_revision != world.stable_revision
    if state.active and rollout_wanted and state.canary_revision != world.canary_revision:
        # A new revision while rolling out: start over with the newest template.
        return _start(spec, world, state.handled_intent), [
            ("Normal", "Restarted", f"new revision {world.canary_revision}: rollout restarted")
        ]
    if world.intent is not None and world.intent.id != state.handled_intent:
        return _apply_intent(spec, state, world)  # the steps go on from the next tick
    if not state.active:
        if rollout_wanted and state.canary_revision != world.canary_revision:
            return _start(spec, world, state.handled_intent), [
                ("Normal", "RolloutStarted", f"canary {world.canary_revision} started")
            ]
        return state, events

    if state.phase == "Promoting":
        if world.stable_promoted:
            return _end(state, "Succeeded", f"{world.canary_revision} promoted to stable"), [
                *events,
                ("Normal", "Succeeded", f"{world.canary_revision} is now stable"),
            ]
        return state, events
    if state.phase == "Paused":
        if world.verdict is None:
            return state, events
        state = _record(state, world.verdict, world.now)
        if world.verdict.result != "fail":
            return state, events  # only a failure moves a paused rollout
        return _failed(spec, state, world.verdict)

    if world.now - _progress_mark(spec, state) > spec.progress_deadline_seconds:
        message = f"no progress for {spec.progress_deadline_seconds}s: rolled back"
        return _end(state, "RolledBack", message), [
            *events,
            ("Warning", "ProgressDeadlineExceeded", message),
        ]

    if world.verdict is not None:
        state = _record(state, world.verdict, world.now)
        if world.verdict.result == "fail":
            state, events = _failed(spec, state, world.verdict)
            if state.phase == "RolledBack":
                return state, events
        elif world.verdict.result == "inconclusive":
            inconclusive = state.inconclusive_checks + 1
            state = replace(state, inconclusive_checks=inconclusive)
            if inconclusive >= INCONCLUSIVE_LIMIT:
                reason = f"InconclusiveAnalysis: {world.verdict.message}"
                return replace(
                    state,
                    phase="Paused",
                    paused_reason=reason,
                    message=f"paused: {inconclusive} inconclusive checks",
                ), [*events, ("Warning", "InconclusiveAnalysis", world.verdict.message)]
        else:
            passed = state.passed_checks + 1
            state = replace(state, inconclusive_checks=0, passed_in_step=True, passed_checks=passed)

    current = spec.steps[state.step_index]
    if current.passes is not None:
        if state.passed_checks >= current.passes:
            return _advance(spec, state, world.now), events
        # Each pass is progress: an A/B test longer than the deadline is no stall.
        passed_now = world.verdict is not None and world.verdict.result == "pass"
        return replace(
            state,
            last_progress=world.now if passed_now else state.last_progress,
            message=f"A/B test: {state.passed_checks}/{current.passes} passing analyses",
        ), events
    if current.set_weight is not None or current.match is not None:
        # Routed to before it is ready, a canary answers 503s (Traefik did, at weight 0).
        if not world.canary_ready:
            return replace(
                state,
                message=f"waiting for the canary to be ready "
                f"(step {state.step_index + 1}/{len(spec.steps)})",
            ), events
        if current.match is not None:
            state = replace(state, match=current.match)
        elif state.weight != current.set_weight:
            state = replace(state, weight=current.set_weight, passed_in_step=False)
        final = state.step_index == len(spec.steps) - 1
        # The last weight is promoted only on a pass at that weight, never on time alone (nor
        # by a header route set after it).
        if final and state.weight > 0 and not state.passed_in_step:
            return replace(
                state,
                message=f"step {len(spec.steps)}/{len(spec.steps)}: waiting for a passing analysis",
            ), events
        return _advance(spec, state, world.now), events
    if current.pause_seconds is None:
        return replace(
            state,
            phase="Paused",
            paused_reason=WAITING_FOR_PROMOTE,
            message=f"step {state.step_index + 1}/{len(spec.steps)}: paused until herd promote",
        ), events
    elapsed = world.now - state.step_started
    # Time alone never promotes traffic: with weight on the canary, a pass is needed too.
    if elapsed >= current.pause_seconds and (state.weight == 0 or state.passed_in_step):
        return _advance(spec, state, world.now), events
    return state, events


#: status.canary field <-> State attribute, for the times stored as RFC 3339.
_TIMES = {
    "startTime": "start_time",
    "stepStartTime": "step_started",
    "lastProgressTime": "last_progress",
    "lastAnalysisTime": "last_analysis_time",
}
_PLAIN = {
    "phase": "phase",
    "stepIndex": "step_index",
    "steps": "steps",
    "weight": "weight",
    "stableRevision": "stable_revision",
    "canaryRevision": "canary_revision",
    "failedChecks": "failed_checks",
    "inconclusiveChecks": "inconclusive_checks",
    "passedInStep": "passed_in_step",
    "passedChecks": "passed_checks",
    "pausedReason": "paused_reason",
    "message": "message",
    "handledIntent": "handled_intent",
}


def to_status(state: State) -> dict[str, Any]:
    out: dict[str, Any] = {key: getattr(state, attr) for key, attr in _PLAIN.items()}
    out.update(
        {key: rfc3339(getattr(state, attr)) for key, attr in _TIMES.items() if getattr(state, attr)}
    )
    if state.last_analysis:
        out["lastAnalysis"] = {**state.last_analysis, "time": rfc3339(state.last_analysis["time"])}
    if state.match is not None:
        match = {"kind": state.match.kind, "name": state.match.name, "value": state.match.value}
        out["match"] = {k: v for k, v in match.items() if v is not None}
    return {k: v for k, v in out.items() if v is not None}


def from_status(status: dict[str, Any] | None) -> State:
    if not status:
        return State()
    values: dict[str, Any] = {attr: status[key] for key, attr in _PLAIN.items() if key in status}
    values.update({attr: seconds(status.get(key)) for key, attr in _TIMES.items()})
    if status.get("lastAnalysis"):
        analysis = dict(status["lastAnalysis"])
        analysis["time"] = seconds(analysis.get("time"))
        values["last_analysis"] = analysis
    if status.get("match"):
        match = status["match"]
        values["match"] = RequestMatch(match["kind"], match["name"], match.get("value"))
    return State(**values)
