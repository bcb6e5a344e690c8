"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection (and so
controller-runtime) does it: what one round decides from the Lease observed, this replica's
identity, its own monotonic clock and the timing; the Lease spec it then writes; and the fencing
rule that stops a leader writing before any other replica may take over. Pure: herd.leadership
runs the rounds against the API server."""

from __future__ import annotations

import datetime
import enum
import math
from dataclasses import dataclass, replace
from typing import Any

#: client-go's JitterFactor: the renew deadline must leave room for a round and its jitter.
_JITTER = 1.2


@dataclass(frozen=True)
class Timing:
    #: Seconds a standby waits, from the last change of the Lease it saw, before taking it over.
    lease_duration: float = 15.0
    #: Seconds the leader goes on writing, from the start of its last successful renew.
    renew_deadline: float = 10.0
    #: Seconds between two rounds (a renew, or a standby's look at the Lease).
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError(f"lease timing must be positive: {self}")
        # The fencing margin: the leader stops before a standby may start.
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(
                f"the lease duration ({self.lease_duration} s) must exceed the renew deadline "
                f"({self.renew_deadline} s)"
            )
        if self.renew_deadline <= _JITTER * self.retry_period:
            raise ValueError(
                f"the renew deadline ({self.renew_deadline} s) must exceed {_JITTER} x the "
                f"retry period ({self.retry_period} s)"
            )


@dataclass(frozen=True)
class Record:
    """A Lease's spec: who holds it, for how long, since when, how often it changed hands."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: dict[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time is not None:
            spec["renewTime"] = self.renew_time
        return spec


@dataclass(frozen=True)
class Observed:
    """A Lease as this replica last saw it, and when (its monotonic clock) it first saw this
    record: the holder's renewTime is on the holder's clock, never compared with ours."""

    record: Record
    resource_version: str
    since: float


def observe(previous: Observed | None, lease: dict[str, Any] | None, now: float) -> Observed | None:
    """The Lease as read at `now` (None: there is none). A record unchanged since `previous`
    keeps its time: a holder that stopped renewing does not look fresh by being read again."""
    if lease is None:
        return None
    record = Record.of(lease)
    since = previous.since if previous is not None and previous.record == record else now
    return Observed(record, lease["metadata"]["resourceVersion"], since)


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, held by this replica
    ACQUIRE = "acquire"  # free or expired: take it, at the resourceVersion observed
    RENEW = "renew"  # this replica leads: renew it
    STAND_BY = "stand-by"  # another replica holds it and may still be writing
    STEP_DOWN = "step-down"  # this replica led but may no longer write: stop


def expired(observed: Observed, now: float) -> bool:
    """Whether the holder can no longer be writing: its record has not changed for the lease
    duration it promised, counted on this replica's clock from when it saw that record."""
    return now >= observed.since + observed.record.lease_duration_seconds


def writable(renewed: float | None, now: float, timing: Timing) -> bool:
    """The fencing rule: a leader writes only until the renew deadline after the start of its
    last successful renew (`renewed`, None when it does not lead). Every standby saw that renew
    no earlier than it started and waits the lease duration from then, which is longer."""
    return renewed is not None and now - renewed < timing.renew_deadline


def decide(
    observed: Observed | None, identity: str, now: float, timing: Timing, renewed: float | None
) -> Action:
    """One round of the election. `renewed`: the start of this replica's last successful write
    of the Lease while leading, on its monotonic clock (None while it does not lead)."""
    if renewed is not None:
        if not writable(renewed, now, timing):
            return Action.STEP_DOWN
        if observed is None or observed.record.holder != identity:
            return Action.STEP_DOWN  # deleted, or taken while this replica could not see it
        return Action.RENEW
    if observed is None:
        return Action.CREATE
    holder = observed.record.holder
    if not holder or holder == identity or expired(observed, now):
        return Action.ACQUIRE
    return Action.STAND_BY


def claimed(observed: Observed | None, identity: str, wall: float, timing: Timing) -> Record:
    """The record that makes (or keeps) `identity` the holder at `wall` (Unix seconds): a
    change of holder counts a transition and sets the acquire time, a renew keeps both."""
    now = micro_time(wall)
    duration = math.ceil(timing.lease_duration)
    if observed is None:
        return Record(identity, duration, now, now, 0)
    previous = observed.record
    if previous.holder == identity:
        return replace(previous, lease_duration_seconds=duration, renew_time=now)
    return Record(identity, duration, now, now, previous.transitions + 1)


def released(record: Record, wall: float) -> Record:
    """The record a leader leaves on a clean exit, as client-go's ReleaseOnCancel: no holder
    and a 1 s duration, so a standby takes it at its next round rather than waiting it out."""
    return replace(record, holder="", lease_duration_seconds=1, renew_time=micro_time(wall))


def micro_time(wall: float) -> str:
    """Unix seconds as a Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    at = datetime.datetime.fromtimestamp(wall, datetime.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
