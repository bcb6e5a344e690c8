"""Does a live object still hold exactly what Herd rendered? Pure.

Herd applies only when the answer is no, so an idle operator sends no writes, and a child
edited or deleted by hand is restored on its next watch event. "Exactly": the live object
holds every field Herd renders (`contains`), and Herd's field manager owns no field it no
longer renders (`owns_more`): an annotation or a TLS block removed from the spec is applied
away, as server-side apply removes what its manager stops sending. And fields other managers
added to a pod template by hand (a hostNetwork, a hostPath volume, a sidecar, `privileged`),
which server-side apply leaves alone, are found (`foreign`) so the reconciler removes them.
The same for a WebService's own status: what anyone but the operator wrote there, except
`status.intent`, is `forged` and removed.
"""

from __future__ import annotations

import json
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


def _identified(item: Any, identity: dict[str, Any]) -> bool:
    return isinstance(item, dict) and all(item.get(k) == v for k, v in identity.items())


def _extra(fields: dict[str, Any], want: Any) -> bool:
    """Does the managed-fields set `fields` (FieldsV1) name anything `want` lacks?"""
    for key, inner in fields.items():
        if key == ".":
            continue
        kind, _, name = key.partition(":")
        if kind == "f":
            if not isinstance(want, dict) or name not in want:
                return True
            child = want[name]
        elif kind == "k":
            identity = json.loads(name)
            items = want if isinstance(want, list) else []
            child = next((i for i in items if _identified(i, identity)), None)
            if child is None:
                return True
        elif kind == "v":
            if not isinstance(want, list) or json.loads(name) not in want:
                return True
            continue
        else:
            continue  # "i:" (positions): lists Herd renders whole, compared by contains
        if inner and _extra(inner, child):
            return True
    return False


def owns_more(live: dict[str, Any], want: dict[str, Any], manager: str) -> bool:
    """Does `manager`'s apply on `live` own a field that `want` no longer has?"""
    return any(
        entry.get("manager") == manager
        and entry.get("operation") == "Apply"
        and _extra(entry.get("fieldsV1") or {}, want)
        for entry in live.get("metadata", {}).get("managedFields") or []
    )


#: Where fields of other managers are removed: the pod template's spec, which decides what the
#: pods may do. Elsewhere (labels, `kubectl rollout restart`'s annotation) they stay.
POD_SPEC = ("spec", "template", "spec")

Path = tuple[str | int, ...]


def pointer(path: Path) -> str:
    """The JSON pointer (RFC 6901) of `path`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _owned_paths(fields: dict[str, Any], live: Any, prefix: Path) -> list[Path]:
    """The paths in `live` of what `fields` (FieldsV1) names: a field or item the manager
    created whole ("." in it) as one path, else each field below it."""
    out: list[Path] = []
    for key, inner in fields.items():
        if key == ".":
            continue
        kind, _, name = key.partition(":")
        if kind == "f" and isinstance(live, dict) and name in live:
            path, child = (*prefix, name), live[name]
        elif kind in ("k", "v") and isinstance(live, list):
            wanted = json.loads(name)
            index = next(
                (
                    i
                    for i, item in enumerate(live)
                    if (item == wanted if kind == "v" else _identified(item, wanted))
                ),
                None,
            )
            if index is None:
                continue
            path, child = (*prefix, index), live[index]
        else:
            continue
        if not inner or "." in inner or kind == "v":
            out.append(path)
        else:
            out.extend(_owned_paths(inner, child, path))
    return out


_MISSING = object()


def _at(obj: Any, path: Path) -> Any:
    for part in path:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return obj


def foreign(live: dict[str, Any], want: dict[str, Any], manager: str) -> list[tuple[str, Path]]:
    """(manager, path) of each field under POD_SPEC that another manager set and `want` (what
    Herd renders) does not have, deepest first, ready to be removed in that order."""
    out: list[tuple[str, Path]] = []
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1") or {}
        for part in POD_SPEC:
            fields = fields.get(f"f:{part}") or {}
        for path in _owned_paths(fields, _at(live, POD_SPEC), POD_SPEC):
            if not _wanted(path, live, want):
                out.append((str(entry.get("manager")), path))
    return sorted(out, key=lambda item: item[1], reverse=True)


def forged(
    live: dict[str, Any], writers: frozenset[str], theirs: frozenset[str]
) -> list[tuple[str, Path]]:
    """(manager, path) of each status field set by a manager outside `writers` (the operator's
    own), except the top-level fields in `theirs` (what users may write), deepest first."""
    out: list[tuple[str, Path]] = []
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") in writers or entry.get("subresource") != "status":
            continue
        fields = (entry.get("fieldsV1") or {}).get("f:status") or {}
        mine = {k: v for k, v in fields.items() if k.removeprefix("f:") not in theirs}
        for path in _owned_paths(mine, live.get("status"), ("status",)):
            out.append((str(entry.get("manager")), path))
    return sorted(out, key=lambda item: item[1], reverse=True)


def _named(items: Any, name: Any) -> Any:
    """The item of the list `items` named `name`: how Herd's lists are keyed."""
    if not isinstance(items, list) or name is None:
        return _MISSING
    return next((i for i in items if isinstance(i, dict) and i.get("name") == name), _MISSING)


def _wanted(path: Path, live: dict[str, Any], want: dict[str, Any]) -> bool:
    """Does `want` hold the field at `path` of `live` (list items matched by name)?"""
    have, node = live, want
    for part in path:
        have = have[part]
        if isinstance(part, int):
            node = _named(node, have.get("name") if isinstance(have, dict) else None)
        else:
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            return False
    return True
