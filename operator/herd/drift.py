"""Does a live object still hold everything Herd rendered? Pure.

Herd applies only when the answer is no, so an idle operator sends no writes, and a child
edited or deleted by hand is restored on its next watch event.
"""

from __future__ import annotations

from typing import Any

from herd.model import InvalidSpec, quantity


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    # The API server canonicalises quantities ("0.5" is stored as "500m").
    if isinstance(want, str | int) and isinstance(have, str | int):
        try:
            return quantity(want) == quantity(have)
        except InvalidSpec:
            return False
    return False


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """Items of a list that is a map by `name` (containers, env, ports), else None."""
    if items and all(isinstance(i, dict) and "name" in i for i in items):
        return {i["name"]: i for i in items}
    return None


def contains(have: Any, want: Any) -> bool:
    """True when `have` holds every field of `want` with an equal value. Extra fields in
    `have` (defaults, other managers' fields, status) are fine."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            key in have and contains(have[key], value) for key, value in want.items()
        )
    if isinstance(want, list):
        if not isinstance(have, list):
            return False
        wanted, had = _keyed(want), _keyed(have)
        if wanted is not None and had is not None:
            return all(k in had and contains(had[k], v) for k, v in wanted.items())
        return len(want) == len(have) and all(
            contains(h, w) for h, w in zip(have, want, strict=True)
        )
    return _same_scalar(want, have)
