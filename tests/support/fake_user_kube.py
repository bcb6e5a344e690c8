"""`FakeKube` with what a user's commands ask of the API (`herd.kube.UserApi`): WebService reads,
intents, a watch, access reviews and Events, for the dashboard's tests.

Every change to a WebService (by the code under test, or by the test through `put`, `edit`,
`remove` and `apply_status`, standing in for the operator) is logged with its resourceVersion,
and `watch_webservices` replays the log from a version as the API server does.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

from herd import kinds
from herd.api_errors import ApiError
from herd.kinds import Ref
from herd.kube import CLI_FIELD_MANAGER, FIELD_MANAGER
from tests.support.fake_kube import FakeKube


class FakeUserKube(FakeKube):
    server = "https://fake-apiserver.invalid:6443"

    def __init__(self) -> None:
        super().__init__()
        #: (resourceVersion, type, WebService) of every change, oldest first.
        self.changes: list[tuple[int, str, dict[str, Any]]] = []
        self._changed = threading.Condition()
        #: (verb, resource/subresource) -> (allowed, reason); allowed when absent.
        self.access: dict[tuple[str, str], tuple[bool, str]] = {}
        self.events: list[dict[str, Any]] = []
        #: What the API server's service proxy answers: (url, query fields) -> status, body.
        self.proxy: Callable[[str, dict[str, str]], tuple[int, bytes]] = prometheus_matrix
        self.proxied: list[tuple[str, dict[str, str]]] = []

    def _log(self, ref: Ref, change: str, obj: dict[str, Any] | None = None) -> None:
        if ref.kind != kinds.WEBSERVICE.kind:
            return
        obj = copy.deepcopy(obj if obj is not None else self.objects[ref])
        with self._changed:
            self.changes.append((int(obj["metadata"]["resourceVersion"]), change, obj))
            self._changed.notify_all()

    # --- Changes, logged for the watch. ---

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        existed = Ref.of(obj) in self.objects
        stored = super().put(obj)
        self._log(Ref.of(stored), "MODIFIED" if existed else "ADDED")
        return stored

    def edit(self, ref: Ref, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        edited = super().edit(ref, change)
        self._log(ref, "MODIFIED")
        return edited

    def remove(self, ref: Ref) -> None:
        gone = copy.deepcopy(self.objects[ref])
        super().remove(ref)
        gone["metadata"]["resourceVersion"] = str(next(self._versions))
        self._log(ref, "DELETED", gone)

    def apply_status(
        self, namespace: str, name: str, status: dict[str, Any], manager: str = FIELD_MANAGER
    ) -> None:
        super().apply_status(namespace, name, status, manager)
        self._log(Ref(kinds.WEBSERVICE.kind, namespace, name), "MODIFIED")

    # --- UserApi. ---

    def get_webservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(Ref(kinds.WEBSERVICE.kind, namespace, name))

    def list_webservices(self, namespace: str | None) -> list[dict[str, Any]]:
        self._call("list", Ref(kinds.WEBSERVICE.kind, namespace or "", ""))
        return [
            copy.deepcopy(obj)
            for ref, obj in self.objects.items()
            if ref.kind == kinds.WEBSERVICE.kind and namespace in (None, ref.namespace)
        ]

    def write_intent(self, namespace: str, name: str, intent: dict[str, Any]) -> dict[str, Any]:
        ref = Ref(kinds.WEBSERVICE.kind, namespace, name)
        self._call("write_intent", ref)
        self.apply_status(namespace, name, {"intent": intent}, manager=CLI_FIELD_MANAGER)
        return copy.deepcopy(self.objects[ref])

    def watch_webservices(
        self, namespace: str | None, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self._call("watch", Ref(kinds.WEBSERVICE.kind, namespace or "", ""))
        with self._changed:
            if resource_version is None:  # as the API server: every object first
                start = self.changes[-1][0] if self.changes else 0
                initial = self.list_webservices(namespace)
            else:
                start, initial = int(resource_version), []
        for ws in initial:
            yield "ADDED", ws
        seen = start
        while True:
            with self._changed:
                fresh = [c for c in self.changes if c[0] > seen]
                if not fresh and not self._changed.wait(timeout_seconds):
                    return
            for version, change, ws in fresh:
                seen = version
                if namespace in (None, ws["metadata"]["namespace"]):
                    yield change, copy.deepcopy(ws)

    def can_i(
        self, verb: str, resource: str, subresource: str, namespace: str, name: str
    ) -> tuple[bool, str]:
        self._call("can_i", Ref("SelfSubjectAccessReview", namespace, name))
        return self.access.get((verb, f"{resource}/{subresource}"), (True, ""))

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        self._call("list", Ref("Event", namespace, name))
        return [
            copy.deepcopy(e)
            for e in self.events
            if e["involvedObject"]["name"] == name and e["metadata"]["namespace"] == namespace
        ]

    def proxy_get(self, url: str, fields: dict[str, str], timeout: float) -> tuple[int, bytes]:
        self._call("get", Ref("Service", "", url))
        self.proxied.append((url, fields))
        return self.proxy(url, fields)

    def unreachable(self) -> None:
        """Every request fails as if the API server were down, from now on."""
        error = ApiError(0, "Unreachable", "[Errno 111] Connection refused")
        for verb in ("get", "list", "watch", "write_intent"):
            self.fail(verb, kinds.WEBSERVICE.kind, error)
        self.fail("can_i", "SelfSubjectAccessReview", error)
        self.fail("list", "Event", error)
        self.fail("get", "Service", error)


def prometheus_matrix(url: str, fields: dict[str, str]) -> tuple[int, bytes]:
    """A Prometheus's answer to a range query of herd.metric_sources, a sample every step:
    the stable track steady, the canary's error rate and latency rising over the window."""
    start, end, step = (int(fields[key]) for key in ("start", "end", "step"))
    canary = 'herd_dev_track="canary"' in fields["query"] or 'canary!=""' in fields["query"]
    latency = fields["query"].startswith("histogram_quantile")
    values = []
    for t in range(start, end + 1, step):
        rise = (t - start) / max(end - start, 1)
        wobble = 0.1 * math.sin(t / (7 * step))
        if latency:
            value = (0.12 + 0.06 * rise if canary else 0.08) * (1 + wobble)
        else:
            value = (0.002 + 0.006 * rise if canary else 0.002) * (1 + wobble)
        values.append([t, f"{value:.6f}"])
    body = {"status": "success", "data": {"resultType": "matrix", "result": [{"values": values}]}}
    return 200, json.dumps(body).encode()
