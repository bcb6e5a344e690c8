"""The leader election's shell: rounds of herd.election against a real Lease, every retry period,
with optimistic concurrency (a write names the resourceVersion it read), and the gate herd.kube
asks before every write. Asyncio: the blocking requests run in a thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from herd import election
from herd.api_errors import ApiError
from herd.election import Action, Observed, Timing
from herd.kube import Kube

log = logging.getLogger("herd.leadership")


class Gate:
    """Open while this replica leads and its last successful renew started less than the renew
    deadline ago (the fencing rule, `election.writable`)."""

    def __init__(self, timing: Timing, monotonic: Callable[[], float] = time.monotonic):
        self.timing = timing
        self._monotonic = monotonic
        self.renewed: float | None = None

    def is_open(self) -> bool:
        return election.writable(self.renewed, self._monotonic(), self.timing)


class Elector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, gate: Gate):
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.gate = gate
        self.timing = gate.timing
        self._observed: Observed | None = None
        self._standing_by_for = ""

    @property
    def _timeout(self) -> float:
        # Two tries of a renew fit in the deadline.
        return self.timing.renew_deadline / 2

    async def acquire(self) -> None:
        """Rounds until this replica leads."""
        while await self._round() is not Action.RENEW:
            await asyncio.sleep(self.timing.retry_period)

    async def keep(self) -> None:
        """Renews every retry period; returns once this replica may no longer write."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            if await self._round() is Action.STEP_DOWN:
                return

    async def release(self) -> None:
        """A clean exit: the gate closes first, then the Lease is left with no holder."""
        self.gate.renewed = None
        observed = self._observed
        if observed is None or observed.record.holder != self.identity:
            return
        spec = election.released(observed.record, time.time()).spec()
        try:
            await asyncio.to_thread(
                self.kube.update_lease,
                self.namespace,
                self.name,
                observed.resource_version,
                spec,
                self._timeout,
            )
        except ApiError as error:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, error)
            return
        log.info("Released lease %s/%s", self.namespace, self.name)

    async def _round(self) -> Action:
        """One look at the Lease and what follows; RENEW when this replica leads after it."""
        started = time.monotonic()
        leading = self.gate.renewed is not None
        try:
            if not leading or self._observed is None:
                lease = await asyncio.to_thread(
                    self.kube.get_lease, self.namespace, self.name, self._timeout
                )
                self._observed = election.observe(self._observed, lease, started)
        except ApiError as error:
            log.warning("could not read lease %s/%s: %s", self.namespace, self.name, error)
            return self._unanswered(started)
        action = election.decide(
            self._observed, self.identity, started, self.timing, self.gate.renewed
        )
        if action is Action.STEP_DOWN:
            self.gate.renewed = None
            log.error("Lost lease %s/%s: stopping", self.namespace, self.name)
            return action
        if action is Action.STAND_BY:
            holder = self._observed.record.holder if self._observed else ""
            if holder != self._standing_by_for:
                log.info(
                    "Standing by: lease %s/%s is held by %s", self.namespace, self.name, holder
                )
                self._standing_by_for = holder
            return action
        record = election.claimed(self._observed, self.identity, time.time(), self.timing)
        try:
            if action is Action.CREATE:
                written = await asyncio.to_thread(
                    self.kube.create_lease, self.namespace, self.name, record.spec(), self._timeout
                )
            else:
                assert self._observed is not None
                written = await asyncio.to_thread(
                    self.kube.update_lease,
                    self.namespace,
                    self.name,
                    self._observed.resource_version,
                    record.spec(),
                    self._timeout,
                )
        except ApiError as error:
            if error.status != 409:
                log.warning("could not write lease %s/%s: %s", self.namespace, self.name, error)
            self._observed = None  # another replica wrote first, or unknown: read it again
            return self._unanswered(started)
        # Our own write: the next renew needs no read.
        self._observed = election.observe(None, written, started)
        if not leading:
            log.info(
                "Leading: acquired lease %s/%s as %s (transition %d)",
                self.namespace,
                self.name,
                self.identity,
                record.transitions,
            )
        self.gate.renewed = started
        return Action.RENEW

    def _unanswered(self, started: float) -> Action:
        """A round that wrote nothing: a leader goes on until its deadline, then steps down."""
        if self.gate.renewed is None:
            return Action.STAND_BY
        if election.writable(self.gate.renewed, started, self.timing):
            return Action.RENEW
        self.gate.renewed = None
        log.error("Lost lease %s/%s: no renew for the renew deadline", self.namespace, self.name)
        return Action.STEP_DOWN
