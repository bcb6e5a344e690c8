"""What the reconciler last saw of each WebService's children, and the child watch events not
yet looked at: a child event showing what the last reconcile already saw (its own apply coming
back, a status change no reconcile reads) is no reason to reconcile again.

Shell state, shared by kopf's worker threads. Keys are (namespace, WebService name).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from herd.kinds import Ref


class Sightings:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._seen: dict[Hashable, dict[Ref, str]] = {}
        self._pending: dict[Hashable, set[tuple[Ref, str]]] = {}

    def arrived(self, key: Hashable, ref: Ref, essence: str) -> None:
        """A child event for `key`'s WebService, its object's essence ("" once deleted)."""
        with self._guard:
            self._pending.setdefault(key, set()).add((ref, essence))

    def news(self, key: Hashable) -> bool:
        """Does an event that arrived since the last call show what the last reconcile did not
        see? Takes those events: the reconcile that follows reads everything afresh."""
        with self._guard:
            pending = self._pending.pop(key, set())
            seen = self._seen.get(key, {})
            return any(seen.get(ref, "") != essence for ref, essence in pending)

    def saw(self, key: Hashable, seen: dict[Ref, str]) -> None:
        """What a reconcile read or wrote of each child (only those: other refs unknown)."""
        with self._guard:
            self._seen[key] = dict(seen)

    def forget(self, key: Hashable) -> None:
        with self._guard:
            self._seen.pop(key, None)
            self._pending.pop(key, None)
