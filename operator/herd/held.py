"""What only the operator may decide, kept where only the operator writes: the stable
version's pod fields and the rollout's state, as annotations on the stable Service.

Not on the stable Deployment, where earlier operators kept them (still read from there): a
Deployment's annotations are copied to its ReplicaSets and each change bumps its generation,
so every rollout step (and a new WebService's first promotion) made the deployment controller
sync again, and the WebService looked as if it were rolling out until it had.

The WebService's status subresource is writable by whoever may write `status.intent` (the
chart's herd-promoter role), so `status.stableSpec` and `status.canary` are reports of what is
held here, and never read back: a forged phase or stable image reaches no Deployment. Pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STABLE_SPEC_ANNOTATION = "herd.dev/stable-spec"
ROLLOUT_ANNOTATION = "herd.dev/rollout"


@dataclass(frozen=True)
class Held:
    stable_spec: dict[str, Any] | None = None  # the pod fields of the version that serves
    rollout: dict[str, Any] | None = None  # the rollout's state, as status.canary reports it


def _encode(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _decode(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None  # not ours to trust: as if absent
    return value if isinstance(value, dict) else None


def annotations(held: Held) -> dict[str, str]:
    out = {}
    if held.stable_spec is not None:
        out[STABLE_SPEC_ANNOTATION] = _encode(held.stable_spec)
    if held.rollout is not None:
        out[ROLLOUT_ANNOTATION] = _encode(held.rollout)
    return out


def read(deployment: dict[str, Any] | None) -> Held:
    notes = ((deployment or {}).get("metadata") or {}).get("annotations") or {}
    return Held(_decode(notes.get(STABLE_SPEC_ANNOTATION)), _decode(notes.get(ROLLOUT_ANNOTATION)))


def without(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` less what is kept on it: a change to that alone is bookkeeping, not news."""
    notes = obj["metadata"].get("annotations") or {}
    kept = {STABLE_SPEC_ANNOTATION, ROLLOUT_ANNOTATION}
    meta = {key: value for key, value in obj["metadata"].items() if key != "annotations"}
    rest = {key: value for key, value in notes.items() if key not in kept}
    return {**obj, "metadata": {**meta, **({"annotations": rest} if rest else {})}}
