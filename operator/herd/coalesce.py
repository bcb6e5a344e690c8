"""One reconciliation at a time per WebService, and bursts of triggers folded into one.

Watch events for a WebService and its children arrive on several kopf workers at once. Running
their reconciliations side by side lets an older view of the world be written after a newer
one (a status regressing to Ready=False). Here they run one at a time per key, and a trigger
that arrives while another waits is dropped: the waiting run reads the state after it anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class Coalescer:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._waiting: set[Hashable] = set()

    def run(self, key: Hashable, work: Callable[[], T]) -> T | None:
        """Run `work` for `key` unless a run for `key` is already waiting to start (then None)."""
        with self._guard:
            if key in self._waiting:
                return None
            self._waiting.add(key)
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                self._waiting.discard(key)
            return work()

    def forget(self, key: Hashable) -> None:
        """Drop the bookkeeping of a key that is gone for good (a deleted WebService)."""
        with self._guard:
            lock = self._locks.get(key)
            if lock is not None and not lock.locked() and key not in self._waiting:
                del self._locks[key]
