"""An in-memory `herd.kube.KubeApi` and a stand-in Prometheus, for reconcile tests.

`FakeKube` is small on purpose: objects are kept by `Ref` as deep copies; `apply` merges the
applied object over the stored one (dicts recursively, lists replaced), which is what
server-side apply does for a single field manager that keeps its fields; the status
subresource keeps each manager's last apply and shows them merged, later writers on top.
Nothing runs the Deployment controller: `roll_out` says a Deployment finished rolling out.

Every call the code under test makes is recorded in `calls` as (verb, Ref); a test changes
the world behind the operator's back with `put`, `edit` and `remove`, which are not recorded.
Every kind is served unless a test names it in `unserved` (its CRD not installed): writes of
it are then refused with a 404, as the API server refuses them.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Callable
from typing import Any

from herd import kinds
from herd.api_errors import ApiError
from herd.kinds import Ref
from herd.kube import FIELD_MANAGER
from herd.observation import Observation

WRITES = ("apply", "delete", "apply_status", "scale", "remove_fields")
NO_DATA = Observation("empty")


def _remove(obj: Any, pointer: str) -> None:
    """Remove what the JSON pointer names (KeyError or IndexError if it is not there)."""
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[int(last) if isinstance(node, list) else last]


def merge(base: Any, over: Any) -> Any:
    """`over` on top of `base`: dicts merged key by key, anything else (lists too) replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base.get(key), value)
        return out
    return copy.deepcopy(over)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Ref, dict[str, Any]] = {}
        self.calls: list[tuple[str, Ref]] = []
        #: (manager, status) of every apply_status, in order.
        self.status_writes: list[tuple[str, dict[str, Any]]] = []
        self._status_by_manager: dict[Ref, dict[str, dict[str, Any]]] = {}
        self._failures: dict[tuple[str, str], ApiError] = {}
        self._uids = itertools.count(1)
        self._versions = itertools.count(1)
        #: Kinds (as in `Kind.kind`) whose CRD the cluster lacks.
        self.unserved: set[str] = set()

    # --- The world behind the operator's back (not recorded). ---

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` as is (a WebService a user created, an object someone else made)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        ref = Ref.of(obj)
        self.objects[ref] = obj
        self._status_by_manager.pop(ref, None)
        if "status" in obj:
            self._status_by_manager[ref] = {"": copy.deepcopy(obj["status"])}
        return copy.deepcopy(obj)

    def edit(self, ref: Ref, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Change a stored object in place, as `kubectl edit` would: generation +1 when the
        spec changed."""
        obj = self.objects[ref]
        before = copy.deepcopy(obj.get("spec"))
        change(obj)
        if obj.get("spec") != before:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 0) + 1
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    def remove(self, ref: Ref) -> None:
        del self.objects[ref]
        self._status_by_manager.pop(ref, None)

    def roll_out(self, name: str, namespace: str = "ns") -> dict[str, Any]:
        """The Deployment controller's part: every replica updated, ready and available."""
        ref = Ref(kinds.DEPLOYMENT.kind, namespace, name)

        def done(deployment: dict[str, Any]) -> None:
            replicas = deployment["spec"].get("replicas", 1)
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "NewReplicaSetAvailable",
                    },
                ],
            }

        return self.edit(ref, done)

    def fail(self, verb: str, kind: str, error: ApiError) -> None:
        """Every `verb` ("get", "apply", ...) on objects of `kind` raises `error` from now on."""
        self._failures[(verb, kind)] = error

    def heal(self) -> None:
        self._failures.clear()

    # --- What the tests count. ---

    def count(self, verb: str | None = None, kind: str | None = None) -> int:
        return sum(
            1
            for v, ref in self.calls
            if (verb is None or v == verb) and (kind is None or ref.kind == kind)
        )

    @property
    def writes(self) -> int:
        return sum(1 for verb, _ in self.calls if verb in WRITES)

    def written(self, verb: str) -> list[Ref]:
        return [ref for v, ref in self.calls if v == verb]

    def reset_calls(self) -> None:
        self.calls.clear()
        self.status_writes.clear()

    # --- KubeApi. ---

    def _call(self, verb: str, ref: Ref) -> None:
        self.calls.append((verb, ref))
        error = self._failures.get((verb, ref.kind))
        if error is not None:
            raise error
        if ref.kind in self.unserved and verb in WRITES:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def served(self, kind: kinds.Kind) -> bool:
        self._call("served", Ref(kind.kind, "", ""))
        return kind.kind not in self.unserved

    def get(self, ref: Ref) -> dict[str, Any] | None:
        self._call("get", ref)
        found = self.objects.get(ref)
        return copy.deepcopy(found) if found is not None else None

    def list(self, kind: kinds.Kind, namespace: str, selector: str) -> list[dict[str, Any]]:
        """Equality selectors only (`a=b,c=d`), which is all Herd sends."""
        self._call("list", Ref(kind.kind, namespace, ""))
        wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
        return [
            copy.deepcopy(obj)
            for ref, obj in self.objects.items()
            if ref.kind == kind.kind
            and ref.namespace == namespace
            and wanted.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        ref = Ref.of(obj)
        self._call("apply", ref)
        old = self.objects.get(ref)
        if old is None:
            new = copy.deepcopy(obj)
            new["metadata"]["uid"] = f"uid-{next(self._uids)}"
            new["metadata"]["generation"] = 1
        else:
            new = merge(old, obj)
            for key in ("uid", "generation"):  # the server's, never the applier's
                new["metadata"][key] = old["metadata"][key]
            if new.get("spec") != old.get("spec"):
                new["metadata"]["generation"] += 1
        new["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[ref] = new
        return copy.deepcopy(new)

    def delete(self, ref: Ref) -> bool:
        self._call("delete", ref)
        if ref not in self.objects:
            return False
        self.remove(ref)
        return True

    def apply_status(
        self, namespace: str, name: str, status: dict[str, Any], manager: str = FIELD_MANAGER
    ) -> None:
        ref = Ref(kinds.WEBSERVICE.kind, namespace, name)
        self._call("apply_status", ref)
        obj = self.objects.get(ref)
        if obj is None:
            raise ApiError(404, "NotFound", f"webservices {name!r} not found")
        self.status_writes.append((manager, copy.deepcopy(status)))
        managers = self._status_by_manager.setdefault(ref, {})
        managers.pop(manager, None)  # the latest writer's fields on top
        managers[manager] = copy.deepcopy(status)
        merged: dict[str, Any] = {}
        for applied in managers.values():
            merged = merge(merged, applied)
        obj["status"] = merged
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def server_time(self) -> float | None:
        return None  # the tests' `now` is the clock

    def remove_fields(
        self, ref: Ref, pointers: list[str], subresource: str | None = None
    ) -> dict[str, Any]:
        """A JSON patch of `remove` operations, applied in order (the pointers say where, the
        subresource is the API server's routing)."""
        self._call("remove_fields", ref)
        if ref not in self.objects:
            raise ApiError(404, "NotFound", f"{ref.kind} {ref.name!r} not found")
        obj = self.objects[ref]
        for path in pointers:
            _remove(obj, path)
            if subresource == "status":  # and from each writer's record, as the server does
                for record in self._status_by_manager.get(ref, {}).values():
                    with contextlib.suppress(KeyError, IndexError):
                        _remove({"status": record}, path)
        return copy.deepcopy(obj)

    def scale(self, namespace: str, name: str, replicas: int, manager: str) -> None:
        ref = Ref(kinds.WEBSERVICE.kind, namespace, name)
        self._call("scale", ref)
        if ref not in self.objects:
            raise ApiError(404, "NotFound", f"webservices {name!r} not found")

        def set_replicas(obj: dict[str, Any]) -> None:
            obj.setdefault("spec", {})["replicas"] = replicas

        self.edit(ref, set_replicas)


class FakePrometheus:
    """Answers each query with the Observation of the first registered fragment found in the
    PromQL, else `default`; records every (url, promql) asked."""

    def __init__(self, default: Observation = NO_DATA) -> None:
        self.default = default
        self.answers: list[tuple[str, Observation]] = []
        self.queries: list[tuple[str, str]] = []

    def answer(self, fragment: str, observation: Observation) -> None:
        self.answers.insert(0, (fragment, observation))  # the latest answer for it wins

    def query(self, url: str, promql: str) -> Observation:
        self.queries.append((url, promql))
        return next((obs for fragment, obs in self.answers if fragment in promql), self.default)
