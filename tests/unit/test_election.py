"""The leader election's decisions (herd.election): expiry on the standby's own clock, the renew
deadline that fences the leader, release on a clean exit, transitions."""

import pytest

from herd.election import (
    Action,
    Observed,
    Record,
    Timing,
    claimed,
    decide,
    expired,
    micro_time,
    observe,
    released,
    writable,
)

TIMING = Timing()  # 15 s / 10 s / 2 s, controller-runtime's defaults
ME, OTHER = "herd-a_1", "herd-b_2"
#: A wall clock far from the monotonic one, as a holder's renewTime may be from our clock.
WALL = 1_800_000_000.0


def lease(holder: str, renew_time: str = "2026-12-05T14:00:00.000000Z", rv: str = "7") -> dict:
    return {
        "metadata": {"resourceVersion": rv},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-12-05T13:00:00.000000Z",
            "renewTime": renew_time,
            "leaseTransitions": 3,
        },
    }


def seen(holder: str, since: float, duration: int = 15) -> Observed:
    return Observed(Record(holder, duration, renew_time="2026-12-05T14:00:00Z"), "7", since)


@pytest.mark.parametrize(
    ("observed", "now", "renewed", "action"),
    [
        # No Lease yet: the first replica creates it.
        (None, 100.0, None, Action.CREATE),
        # Another replica's Lease, renewed 14.9 s ago by our clock: it may still write.
        (seen(OTHER, 85.1), 100.0, None, Action.STAND_BY),
        # The lease duration since we saw its last change: the holder is fenced, take it.
        (seen(OTHER, 85.0), 100.0, None, Action.ACQUIRE),
        # The duration is the one the holder wrote, not ours.
        (seen(OTHER, 95.0, duration=5), 100.0, None, Action.ACQUIRE),
        # Released on SIGTERM (holder cleared): taken at once.
        (seen("", 99.9, duration=1), 100.0, None, Action.ACQUIRE),
        # A Lease naming this process (its write landed but the answer was lost): take it back.
        (seen(ME, 99.0), 100.0, None, Action.ACQUIRE),
        # Leading, renewed 2 s ago: renew.
        (seen(ME, 98.0), 100.0, 98.0, Action.RENEW),
        # Leading, last successful renew started 9.9 s ago: still within the deadline.
        (seen(ME, 90.1), 100.0, 90.1, Action.RENEW),
        # Leading, no successful renew for the renew deadline: step down before anyone takes it.
        (seen(ME, 90.0), 100.0, 90.0, Action.STEP_DOWN),
        # Leading, but the Lease names another replica now: step down.
        (seen(OTHER, 99.0), 100.0, 98.0, Action.STEP_DOWN),
        # Leading, but the Lease was deleted: step down (it is recreated by a standby's round).
        (None, 100.0, 98.0, Action.STEP_DOWN),
    ],
)
def test_decide(observed, now, renewed, action):
    assert decide(observed, ME, now, TIMING, renewed) is action


@pytest.mark.parametrize(
    ("renew_time", "read_at", "expired_at_115"),
    [
        # The holder's clock an hour ahead: its renewTime says nothing to us; 15 s after we
        # first saw that record it is expired all the same.
        ("2026-12-05T15:00:00.000000Z", 100.0, True),
        # The holder's clock an hour behind: a record seen just now is fresh however old it says.
        ("2026-12-05T13:00:00.000000Z", 110.0, False),
    ],
)
def test_expiry_is_counted_on_the_standbys_clock_not_the_holders(
    renew_time, read_at, expired_at_115
):
    observed = observe(None, lease(OTHER, renew_time), read_at)
    assert expired(observed, 115.0) is expired_at_115


def test_a_record_read_again_unchanged_keeps_when_it_was_first_seen():
    first = observe(None, lease(OTHER), 100.0)
    again = observe(first, lease(OTHER, rv="7"), 110.0)
    assert again.since == 100.0
    assert decide(again, ME, 115.0, TIMING, None) is Action.ACQUIRE


def test_a_renewed_record_restarts_the_standbys_count():
    first = observe(None, lease(OTHER), 100.0)
    renewed = observe(first, lease(OTHER, "2026-12-05T14:00:02.000000Z", rv="8"), 110.0)
    assert renewed.since == 110.0
    assert decide(renewed, ME, 115.0, TIMING, None) is Action.STAND_BY


def test_no_lease_observed_is_none():
    assert observe(seen(OTHER, 1.0), None, 2.0) is None


@pytest.mark.parametrize(
    ("renewed", "now", "open_"),
    [
        (None, 100.0, False),  # not leading
        (100.0, 100.0, True),
        (100.0, 109.99, True),
        (100.0, 110.0, False),  # the renew deadline
    ],
)
def test_writable(renewed, now, open_):
    assert writable(renewed, now, TIMING) is open_


def test_the_fence_closes_before_a_standby_may_take_over():
    # The leader's last renew starts at 100 and lands; a standby sees it no earlier than 100.
    standby = Observed(Record(OTHER, 15), "8", since=100.0)
    assert writable(100.0, 109.9, TIMING)
    assert not writable(100.0, 110.0, TIMING)  # the leader stops writing here,
    assert decide(standby, ME, 114.9, TIMING, None) is Action.STAND_BY  # none starts yet,
    assert decide(standby, ME, 115.0, TIMING, None) is Action.ACQUIRE  # until the duration.


def test_creating_the_lease_holds_it_with_no_transition():
    record = claimed(None, ME, WALL, TIMING)
    assert record == Record(ME, 15, micro_time(WALL), micro_time(WALL), 0)


def test_taking_over_counts_a_transition_and_sets_the_acquire_time():
    observed = observe(None, lease(OTHER), 1.0)
    record = claimed(observed, ME, WALL, TIMING)
    assert (record.holder, record.transitions) == (ME, 4)
    assert record.acquire_time == record.renew_time == micro_time(WALL)


def test_taking_a_released_lease_counts_a_transition():
    observed = Observed(released(Record(OTHER, 15, transitions=3), WALL), "9", 1.0)
    assert claimed(observed, ME, WALL + 1, TIMING).transitions == 4


def test_renewing_keeps_the_acquire_time_and_transitions():
    observed = observe(None, lease(ME), 1.0)
    record = claimed(observed, ME, WALL, TIMING)
    assert record.acquire_time == "2026-12-05T13:00:00.000000Z"
    assert record.renew_time == micro_time(WALL)
    assert record.transitions == 3


def test_the_lease_duration_written_is_whole_seconds_rounded_up():
    timing = Timing(lease_duration=7.5, renew_deadline=5.0, retry_period=1.0)
    assert claimed(None, ME, WALL, timing).lease_duration_seconds == 8


def test_release_clears_the_holder_and_keeps_the_transitions():
    record = released(Record(ME, 15, "a", "b", 3), WALL)
    assert record == Record("", 1, "a", micro_time(WALL), 3)
    assert record.spec() == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "leaseTransitions": 3,
        "acquireTime": "a",
        "renewTime": micro_time(WALL),
    }


def test_a_record_round_trips_through_the_lease_spec():
    record = Record.of(lease(OTHER))
    assert Record.of({"spec": record.spec()}) == record


def test_an_empty_lease_spec_is_free():
    assert Record.of({"metadata": {}}) == Record()


def test_micro_time():
    assert micro_time(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


@pytest.mark.parametrize(
    ("lease_duration", "renew_deadline", "retry_period", "says"),
    [
        (10.0, 10.0, 2.0, "must exceed the renew deadline"),
        (15.0, 2.4, 2.0, "x the retry period"),
        (15.0, 10.0, 0.0, "positive"),
    ],
)
def test_timing_that_could_not_fence_is_refused(lease_duration, renew_deadline, retry_period, says):
    with pytest.raises(ValueError, match=says):
        Timing(lease_duration, renew_deadline, retry_period)
