"""kopf registration: thin handlers that call `herd.reconcile` and report what it did."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import kopf
from prometheus_client import Counter, Histogram

from herd import api, model
from herd.autoscaling import loop as autoscaler
from herd.coalesce import Coalescer
from herd.kube import ApiError, Kube
from herd.objectmeta import MANAGED_BY, MANAGED_BY_LABEL
from herd.prometheus import Prometheus
from herd.reconcile import TransientError, reconcile
from herd.rollout import loop as canary
from herd.settings import Settings

RECONCILES = Counter("herd_reconciles", "WebService reconciliations", ["trigger", "result"])
RECONCILE_SECONDS = Histogram(
    "herd_reconcile_duration_seconds",
    "Time one reconciliation took",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("herd_reconcile_writes", "API writes made by reconciliations")
AUTOSCALE_DECISIONS = Counter("herd_autoscale_decisions", "Autoscaler decisions", ["reason"])
AUTOSCALE_SECONDS = Histogram(
    "herd_autoscale_duration_seconds",
    "Time one autoscaling decision took (queries included)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

WEBSERVICES = (api.GROUP, api.VERSION, api.PLURAL)
CHILD_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("gateway.networking.k8s.io", "v1", "httproutes"),
)
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}

log = logging.getLogger("herd.handlers")


PEERING_LIFETIME_SECONDS = 15


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping goes to herd.dev annotations; status belongs to Herd alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.posting.level = logging.INFO
    settings.execution.max_workers = 16
    # A watch that goes quiet this long is restarted (silently frozen watches, kopf #1093).
    settings.watching.inactivity_timeout = 600
    settings.watching.server_timeout = 300
    # A replica that dies without a goodbye is replaced once its peering entry is this old;
    # kopf's default (60 s) would leave WebServices unserved for a minute.
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    memo.kube = Kube.from_environment()
    memo.setdefault("settings", Settings.from_environment())
    memo.prometheus = {}  # one client (and connection pool) per Prometheus URL


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    for client in memo.get("prometheus", {}).values():
        await client.close()


COALESCER = Coalescer()


def _reconcile(trigger: str, memo: kopf.Memo, namespace: str, name: str) -> None:
    COALESCER.run((namespace, name), lambda: _reconcile_now(trigger, memo, namespace, name))


def _reconcile_now(trigger: str, memo: kopf.Memo, namespace: str, name: str) -> None:
    started = time.monotonic()
    try:
        outcome = reconcile(memo.kube, memo.settings, namespace, name)
    except TransientError as error:
        RECONCILES.labels(trigger, "retry").inc()
        raise kopf.TemporaryError(f"API unavailable, retrying: {error}", delay=5) from error
    except Exception:
        RECONCILES.labels(trigger, "error").inc()
        raise
    finally:
        RECONCILE_SECONDS.observe(time.monotonic() - started)
    RECONCILES.labels(trigger, "ok").inc()
    WRITES.inc(outcome.writes)
    for kind, reason, message in outcome.events:
        kopf.event(outcome.subject, type=kind, reason=reason, message=message)


@kopf.on.resume(*WEBSERVICES)
@kopf.on.create(*WEBSERVICES)
@kopf.on.update(*WEBSERVICES)
def webservice_changed(namespace: str, name: str, memo: kopf.Memo, reason: str, **_: Any) -> None:
    _reconcile(str(reason), memo, namespace, name)


@kopf.on.delete(*WEBSERVICES, optional=True)
def webservice_deleted(namespace: str, name: str, **_: Any) -> None:
    COALESCER.forget((namespace, name))


def _child_changed(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") is None:
        return  # the initial listing: on.resume reconciles every WebService anyway
    for owner in body.metadata.get("ownerReferences", []):
        if owner.get("kind") == api.KIND and owner.get("apiVersion", "").startswith(api.GROUP):
            kind = body["kind"].lower()
            _reconcile(f"child-{kind}", memo, body.metadata.namespace, owner["name"])


for _group, _version, _plural in CHILD_RESOURCES:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"child-{_plural}")(_child_changed)


def _builtin_autoscaling(spec: kopf.Spec, **_: Any) -> bool:
    scaling = spec.get("autoscaling") or {}
    return bool(scaling.get("enabled")) and scaling.get("engine", "builtin") == "builtin"


def _served(body: kopf.Body, memo: kopf.Memo) -> model.WebService | None:
    """The WebService a timer should act on: not one being deleted, nor an invalid one (the
    reconciler reports that as Degraded)."""
    if body.metadata.get("deletionTimestamp"):
        return None
    try:
        return model.parse(dict(body), memo.settings)
    except model.InvalidSpec:
        return None


def _prometheus(memo: kopf.Memo, ws: model.WebService) -> Prometheus:
    url = ws.metrics.prometheus_url
    return memo.prometheus.setdefault(url, Prometheus(url))


def _gone(error: ApiError) -> bool:
    """Deleted (or its namespace going) between the timer's start and its write."""
    return error.status == 404 or error.namespace_terminating


async def autoscale(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ws = _served(body, memo)
    if ws is None:
        return
    started = time.monotonic()
    try:
        outcome = await autoscaler.autoscale(
            memo.kube, _prometheus(memo, ws), ws, dict(body.status), time.time()
        )
    except ApiError as error:
        if _gone(error):
            return
        raise
    AUTOSCALE_SECONDS.observe(time.monotonic() - started)
    AUTOSCALE_DECISIONS.labels(outcome.decision.reason).inc()
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)


def _canary_wanted(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("canary"))


async def canary_tick(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ws = _served(body, memo)
    if ws is None:
        return
    try:
        outcome = await canary.progress(
            memo.kube, _prometheus(memo, ws), memo.settings, dict(body), time.time()
        )
    except ApiError as error:
        if _gone(error):
            return
        raise
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)
    if outcome.changed:
        # The new state asks for other objects (weights, the canary, a promoted stable).
        await asyncio.to_thread(
            _reconcile, "canary", memo, body.metadata.namespace, body.metadata.name
        )


def register_timers(settings: Settings, registry: kopf.OperatorRegistry | None = None) -> None:
    """Timers per WebService, at intervals that are operator settings: the built-in autoscaler
    where it is enabled, the canary controller where spec.canary is set."""
    registry = registry or kopf.get_default_registry()
    timers = (
        ("autoscale", settings.autoscale_interval, _builtin_autoscaling, autoscale),
        ("canary", settings.canary_interval, _canary_wanted, canary_tick),
    )
    for timer_id, interval, when, handler in timers:
        kopf.timer(*WEBSERVICES, id=timer_id, interval=interval, when=when, registry=registry)(
            handler
        )
    _without_finalizers(registry)


def _without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """kopf puts a finalizer on every object a timer serves, to stop the timer before the object
    goes (kopf #1074, no option). Herd's timers have nothing to clean up (owner references remove
    the children), and the finalizer made deleting a namespace hang whenever the operator could
    not see the deletion through: in namespaced mode the namespace's RoleBinding goes first; with
    a namespace pattern kopf stops watching a terminating namespace. kopf stops a timer when its
    object is deleted either way."""
    spawning = registry._spawning  # kopf has no public way to register a timer without one
    spawning._handlers = [
        dataclasses.replace(handler, requires_finalizer=False) for handler in spawning._handlers
    ]
