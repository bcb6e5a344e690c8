"""The canary state machine, tick by tick, and the analysis verdicts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herd.model import AnalysisSpec, CanarySpec, CanaryStep, RequestMatch
from herd.rollout.analysis import Check, Verdict
from herd.rollout.machine import (
    INCONCLUSIVE_LIMIT,
    WAITING_FOR_PROMOTE,
    Intent,
    State,
    World,
    analysis_due,
    canary_replicas,
    moves_with_time,
    step,
)

SPEC = CanarySpec(
    steps=(
        CanaryStep(set_weight=10),
        CanaryStep(is_pause=True, pause_seconds=60),
        CanaryStep(set_weight=50),
        CanaryStep(is_pause=True),
    ),
    analysis=AnalysisSpec(
        interval_seconds=30,
        max_error_rate=0.01,
        max_p99_latency_ms=500,
        min_requests=50,
        failure_limit=2,
    ),
    progress_deadline_seconds=600,
)
#: A rollout under way; each test changes what it is about.
ROLLING = State(
    phase="Progressing",
    steps=4,
    canary_revision="new",
    stable_revision="old",
    step_started=1000,
    last_progress=1000,
)


def rolling(**changes) -> State:
    return replace(ROLLING, **changes)


PASS = Verdict("pass", "ok", 100, 0.0, 20.0)
FAIL = Verdict("fail", "error rate 5.00% above 1.00%", 100, 0.05, 20.0)
INCONCLUSIVE = Verdict("inconclusive", "3 requests, fewer than minRequests 50", 3)


def world(
    now=1000.0, ready=True, promoted=False, verdict=None, intent=None, canary="new", stable="old"
):
    return World(now, canary, stable, ready, promoted, verdict, intent)


def run(state, *worlds):
    events = []
    for w in worlds:
        state, new = step(SPEC, state, w)
        events += new
    return state, events


def test_a_changed_template_starts_a_rollout_and_the_first_weight_waits_for_readiness():
    state, events = run(State(), world())
    assert (state.phase, state.step_index, state.weight) == ("Progressing", 0, 0)
    assert state.canary_revision == "new" and state.stable_revision == "old"
    assert [e[1] for e in events] == ["RolloutStarted"]
    state, _ = run(state, world(now=1001, ready=False))
    assert state.weight == 0 and "waiting for the canary" in state.message
    state, _ = run(state, world(now=1002))
    assert (state.weight, state.step_index) == (10, 1)


def test_nothing_to_do_when_the_spec_matches_the_stable_version():
    assert run(State(), world(canary="same", stable="same")) == (State(), [])


def test_timed_pause_needs_time_and_a_pass():
    state = rolling(step_index=1, weight=10)
    assert run(state, world(now=1030))[0].step_index == 1  # too early
    assert run(state, world(now=1070))[0].step_index == 1  # time up, no pass yet
    passed, _ = run(state, world(now=1070, verdict=PASS))
    assert (passed.step_index, passed.weight) == (2, 10)
    assert passed.last_analysis["verdict"] == "pass"


def test_indefinite_pause_waits_for_promote():
    state = rolling(step_index=3, weight=50)
    paused, _ = run(state, world(now=1001))
    assert (paused.phase, paused.paused_reason) == ("Paused", WAITING_FOR_PROMOTE)
    assert run(paused, world(now=5000))[0].phase == "Paused"  # no deadline while paused
    promoted, events = run(paused, world(now=5001, intent=Intent("promote", "i1")))
    assert promoted.phase == "Promoting" and promoted.handled_intent == "i1"
    assert [e[1] for e in events] == ["Promoted"]


def test_promotion_completes_when_the_stable_runs_the_new_template():
    state = rolling(phase="Promoting", step_index=4, weight=50)
    assert run(state, world(now=1001))[0].phase == "Promoting"
    done, events = run(state, world(now=1002, promoted=True))
    assert (done.phase, done.weight) == ("Succeeded", 0)
    assert [e[1] for e in events] == ["Succeeded"]


def test_failed_checks_up_to_the_limit_roll_back():
    state = rolling(step_index=1, weight=10)
    once, events = run(state, world(now=1030, verdict=FAIL))
    assert (once.phase, once.failed_checks) == ("Progressing", 1)
    assert [e[1] for e in events] == ["AnalysisFailed"]
    twice, events = run(once, world(now=1060, verdict=FAIL))
    assert (twice.phase, twice.weight, twice.failed_checks) == ("RolledBack", 0, 2)
    assert "5.00%" in twice.message and [e[1] for e in events] == ["RolledBack"]


def test_inconclusive_checks_pause_instead_of_promoting():
    state = rolling(step_index=1, weight=10)
    for i in range(INCONCLUSIVE_LIMIT):
        state, _ = run(state, world(now=1100 + i, verdict=INCONCLUSIVE))
    assert state.phase == "Paused" and state.paused_reason.startswith("InconclusiveAnalysis")
    assert state.step_index == 1 and state.failed_checks == 0
    resumed, _ = run(state, world(now=1200, intent=Intent("resume", "r1")))
    assert (resumed.phase, resumed.inconclusive_checks, resumed.step_index) == ("Progressing", 0, 1)


def test_progress_deadline_rolls_back():
    state = rolling(step_index=0)
    rolled, events = run(state, world(now=1601, ready=False))
    assert rolled.phase == "RolledBack" and "ProgressDeadlineExceeded" in [e[1] for e in events]


def test_a_new_revision_restarts_from_step_zero():
    state = rolling(
        phase="Paused", step_index=3, weight=50, failed_checks=1, paused_reason=WAITING_FOR_PROMOTE
    )
    restarted, events = run(state, world(now=2000, canary="newer"))
    assert (restarted.phase, restarted.step_index, restarted.weight) == ("Progressing", 0, 0)
    assert (restarted.canary_revision, restarted.failed_checks) == ("newer", 0)
    assert [e[1] for e in events] == ["Restarted"]


def test_a_rolled_back_revision_is_not_retried_by_itself():
    state = State(phase="RolledBack", canary_revision="new", stable_revision="old")
    assert run(state, world(now=3000))[0].phase == "RolledBack"
    retried, _ = run(state, world(now=3001, intent=Intent("retry", "t1")))
    assert (retried.phase, retried.step_index, retried.handled_intent) == ("Progressing", 0, "t1")


@pytest.mark.parametrize(
    ("phase", "action", "after"),
    [
        ("Progressing", "abort", "Aborted"),
        ("Paused", "abort", "Aborted"),
        ("Progressing", "promote-full", "Promoting"),
        ("Progressing", "pause", "Paused"),
        ("Succeeded", "abort", "Succeeded"),  # nothing to abort: ignored, and said so
    ],
)
def test_intents(phase, action, after):
    state = rolling(
        phase=phase,
        step_index=1,
        weight=10,
        stable_revision="old" if phase != "Succeeded" else "new",
    )
    stable = "old" if phase != "Succeeded" else "new"
    new, events = run(state, world(now=1001, intent=Intent(action, "x"), stable=stable))
    assert new.phase == after and new.handled_intent == "x"
    if after in ("Aborted",):
        assert new.weight == 0
    if phase == "Succeeded":
        assert events[0][1] == "IntentIgnored"


def test_an_intent_is_handled_once():
    state = rolling(step_index=1, weight=10, handled_intent="x")
    assert run(state, world(now=1001, intent=Intent("abort", "x")))[0].phase == "Progressing"


def test_final_weight_needs_a_pass_before_promotion():
    spec = replace(SPEC, steps=(CanaryStep(set_weight=20),))
    state = rolling(step_index=0, steps=1)
    state, _ = step(spec, state, world(now=1001))
    assert (state.phase, state.weight) == ("Progressing", 20)
    state, _ = step(spec, state, world(now=1031, verdict=PASS))
    assert state.phase == "Promoting"


PINNED = RequestMatch("header", "X-Canary", "on")
#: Pin the header first, then weight, then wait for `herd promote`: the integration test's plan.
HEADER_FIRST = replace(
    SPEC,
    steps=(CanaryStep(match=PINNED), CanaryStep(set_weight=10), CanaryStep(is_pause=True)),
)


def test_a_header_route_waits_for_a_ready_canary_then_stays_beside_the_weights():
    state = rolling(steps=3)
    waiting, _ = step(HEADER_FIRST, state, world(now=1001, ready=False))
    assert (waiting.step_index, waiting.match) == (0, None)
    pinned, _ = step(HEADER_FIRST, waiting, world(now=1002))
    assert (pinned.step_index, pinned.weight, pinned.match) == (1, 0, PINNED)
    weighted, _ = step(HEADER_FIRST, pinned, world(now=1003))
    assert (weighted.step_index, weighted.weight, weighted.match) == (2, 10, PINNED)
    paused, _ = step(HEADER_FIRST, weighted, world(now=1004))
    assert (paused.phase, paused.match) == ("Paused", PINNED)


@pytest.mark.parametrize(
    ("phase", "world_changes", "after"),
    [
        ("Paused", {"intent": Intent("abort", "a")}, "Aborted"),
        ("Paused", {"verdict": FAIL}, "Paused"),  # one failure: still pinned
        ("Progressing", {"now": 1000 + 601}, "RolledBack"),  # the deadline
        ("Promoting", {"promoted": True}, "Succeeded"),
    ],
)
def test_the_header_route_ends_with_the_rollout_and_only_then(phase, world_changes, after):
    state = rolling(phase=phase, steps=3, step_index=1, weight=10, match=PINNED)
    if after == "RolledBack":
        state = replace(state, step_index=1, weight=0)
    new, _ = step(HEADER_FIRST, state, world(**{"now": 1001, **world_changes}))
    assert new.phase == after
    assert new.match == (PINNED if new.active else None)
    assert new.weight == (10 if new.active else 0)


def test_promote_full_keeps_the_header_route_until_the_stable_runs_the_canary():
    state = rolling(phase="Paused", steps=3, step_index=2, weight=10, match=PINNED)
    promoting, _ = step(HEADER_FIRST, state, world(now=1001, intent=Intent("promote-full", "p")))
    assert (promoting.phase, promoting.match) == ("Promoting", PINNED)
    done, _ = step(HEADER_FIRST, promoting, world(now=1002, promoted=True))
    assert (done.phase, done.match) == ("Succeeded", None)


def test_a_header_route_as_the_last_step_promotes_only_after_a_pass_at_the_weight():
    spec = replace(SPEC, steps=(CanaryStep(set_weight=20), CanaryStep(match=PINNED)))
    state, _ = step(spec, rolling(steps=2), world(now=1001))
    pinned, _ = step(spec, state, world(now=1002))
    assert (pinned.phase, pinned.step_index, pinned.match) == ("Progressing", 1, PINNED)
    promoting, _ = step(spec, pinned, world(now=1031, verdict=PASS))
    assert promoting.phase == "Promoting"


def test_a_new_revision_starts_over_without_the_header_route():
    state = rolling(steps=3, step_index=2, weight=10, match=PINNED)
    restarted, _ = step(HEADER_FIRST, state, world(now=1001, canary="newer"))
    assert (restarted.step_index, restarted.match) == (0, None)


AB_TEST = replace(SPEC, steps=(CanaryStep(match=PINNED), CanaryStep(passes=2)))


def ab_testing(**changes) -> State:
    """An A/B test's second step: the match pinned, weight 0, counting passes."""
    return rolling(steps=2, step_index=1, match=PINNED, **changes)


def test_an_ab_test_pins_the_match_then_promotes_after_its_passing_analyses():
    pinned, _ = step(AB_TEST, rolling(steps=2), world(now=1001))
    assert (pinned.step_index, pinned.weight, pinned.match) == (1, 0, PINNED)
    assert analysis_due(AB_TEST, pinned, 1001)  # at weight 0: the matching requests are judged
    once, _ = step(AB_TEST, pinned, world(now=1031, verdict=PASS))
    assert (once.phase, once.passed_checks, once.message) == (
        "Progressing",
        1,
        "A/B test: 1/2 passing analyses",
    )
    twice, _ = step(AB_TEST, once, world(now=1061, verdict=PASS))
    assert (twice.phase, twice.weight, twice.match) == ("Promoting", 0, PINNED)


@pytest.mark.parametrize(
    ("verdicts", "phase", "passed"),
    [
        ([PASS, INCONCLUSIVE, PASS], "Promoting", 2),  # passes need not be consecutive
        ([INCONCLUSIVE] * INCONCLUSIVE_LIMIT, "Paused", 0),  # no matching traffic: no promotion
        ([PASS, FAIL, FAIL], "RolledBack", 1),
    ],
)
def test_an_ab_test_counts_passes_and_stops_on_no_data_or_failures(verdicts, phase, passed):
    state = ab_testing()
    for i, verdict in enumerate(verdicts):
        state, _ = step(AB_TEST, state, world(now=1030 + 30 * i, verdict=verdict))
    assert (state.phase, state.passed_checks) == (phase, passed)
    assert state.match == (None if phase == "RolledBack" else PINNED)


def test_an_ab_test_longer_than_the_deadline_is_no_stall_while_it_passes():
    spec = replace(AB_TEST, steps=(CanaryStep(match=PINNED), CanaryStep(passes=100)))
    state = ab_testing()
    for now in range(1500, 3000, 500):  # 500 s apart, within the 600 s deadline
        state, _ = step(spec, state, world(now=now, verdict=PASS))
    assert (state.phase, state.passed_checks) == ("Progressing", 3)
    stalled, _ = step(spec, state, world(now=2500 + 601, verdict=INCONCLUSIVE))
    assert stalled.phase == "RolledBack"


def test_analysis_is_due_every_interval_only_with_traffic_on_the_canary():
    state = State(phase="Progressing", weight=10, last_analysis_time=1000)
    assert not analysis_due(SPEC, state, 1029)
    assert analysis_due(SPEC, state, 1030)
    assert not analysis_due(SPEC, replace(state, weight=0), 2000)
    # Paused with traffic (waiting for herd promote): still judged, so a failure rolls back.
    assert analysis_due(SPEC, replace(state, phase="Paused"), 2000)
    assert not analysis_due(SPEC, replace(state, phase="Promoting"), 2000)


@pytest.mark.parametrize(
    ("stable", "weight", "replicas"), [(4, 10, 1), (4, 50, 2), (10, 25, 3), (3, 0, 1)]
)
def test_canary_replicas_follow_the_weight(stable, weight, replicas):
    assert canary_replicas(stable, weight) == replicas


def test_state_round_trips_through_status():
    from herd.rollout.machine import from_status, to_status

    state = State(
        phase="Paused",
        step_index=3,
        steps=4,
        weight=50,
        stable_revision="a",
        canary_revision="b",
        failed_checks=1,
        inconclusive_checks=2,
        paused_reason=WAITING_FOR_PROMOTE,
        message="m",
        start_time=1_700_000_000,
        step_started=1_700_000_100,
        last_progress=1_700_000_100,
        last_analysis_time=1_700_000_090,
        handled_intent="x",
        last_analysis={"time": 1_700_000_090.0, "verdict": "pass", "requests": 60},
        match=PINNED,
    )
    status = to_status(state)
    assert status["startTime"] == "2023-11-14T22:13:20Z"
    assert status["lastAnalysis"]["verdict"] == "pass"
    assert status["match"] == {"kind": "header", "name": "X-Canary", "value": "on"}
    assert from_status(status) == state
    assert from_status(None) == State()


@pytest.mark.parametrize(
    ("match", "reported"),
    [
        (None, None),
        (RequestMatch("header", "X-Canary"), {"kind": "header", "name": "X-Canary"}),
        (RequestMatch("cookie", "canary"), {"kind": "cookie", "name": "canary"}),
    ],
)
def test_the_match_round_trips_through_status(match, reported):
    from herd.rollout.machine import from_status, to_status

    status = to_status(rolling(match=match))
    assert status.get("match") == reported
    assert from_status(status).match == match


@pytest.mark.parametrize(
    ("status", "moves"),
    [
        ({}, False),
        ({"canary": {"phase": "Progressing"}}, True),
        ({"canary": {"phase": "Paused"}}, True),
        ({"canary": {"phase": "Promoting"}}, True),
        ({"canary": {"phase": "Succeeded"}}, False),
        ({"canary": {"phase": "RolledBack", "handledIntent": "a"}, "intent": {"id": "a"}}, False),
        ({"canary": {"phase": "RolledBack", "handledIntent": "a"}, "intent": {"id": "b"}}, True),
        ({"intent": {"id": "b", "action": "retry"}}, True),
    ],
)
def test_only_a_rollout_under_way_or_a_waiting_intent_moves_with_time(status, moves):
    assert moves_with_time(status) is moves


def test_a_timed_pause_longer_than_the_deadline_is_no_stall():
    """A 700 s pause under a 600 s deadline, with passing analyses, goes on to the next step;
    the deadline then counts from the pause's end."""
    spec = replace(
        SPEC,
        steps=(
            CanaryStep(set_weight=10),
            CanaryStep(is_pause=True, pause_seconds=700),
            CanaryStep(set_weight=50),
        ),
    )
    pausing = rolling(step_index=1, weight=10, passed_in_step=True, step_started=1000)
    state, events = step(spec, pausing, world(now=1650))
    assert state.phase == "Progressing" and state.step_index == 1, events
    state, _ = step(spec, state, world(now=1700))
    assert state.step_index == 2
    waiting = rolling(step_index=1, weight=10, passed_in_step=False, step_started=1000)
    assert step(spec, waiting, world(now=2299))[0].phase == "Progressing"
    assert step(spec, waiting, world(now=2301))[0].phase == "RolledBack"


def test_each_check_of_an_analysis_is_recorded_and_round_trips_through_status():
    from herd.rollout.machine import from_status, to_status

    checks = (
        Check("requestCount", "pass", "100 requests", 100),
        Check("errorRateVsStable", "fail", "error rate 3.00% above 2.00%", 0.03, 0.01),
    )
    verdict = Verdict("fail", "error rate 3.00% above 2.00%", 100, 0.03, 20.0, checks)
    state, _ = run(rolling(step_index=1, weight=10), world(now=1030, verdict=verdict))
    recorded = to_status(state)["lastAnalysis"]["checks"]
    assert recorded == [
        {"name": "requestCount", "verdict": "pass", "message": "100 requests", "value": 100},
        {
            "name": "errorRateVsStable",
            "verdict": "fail",
            "message": "error rate 3.00% above 2.00%",
            "value": 0.03,
            "stable": 0.01,
        },
    ]
    assert from_status(to_status(state)) == state
