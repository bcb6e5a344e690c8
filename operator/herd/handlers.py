"""kopf registration: thin handlers that call `herd.controller` and report what it did."""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from prometheus_client import Counter, Histogram

from herd import api, autoscaler, model
from herd.coalesce import Coalescer
from herd.controller import TransientError, reconcile
from herd.kube import Kube
from herd.metrics.prometheus import Prometheus
from herd.render.meta import MANAGED_BY, MANAGED_BY_LABEL
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
)
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}

log = logging.getLogger("herd.handlers")


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


async def autoscale(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        ws = model.parse(dict(body), memo.settings)
    except model.InvalidSpec:
        return  # the reconciler reports it as Degraded
    url = ws.metrics.prometheus_url
    prometheus = memo.prometheus.setdefault(url, Prometheus(url))
    started = time.monotonic()
    outcome = await autoscaler.autoscale(memo.kube, prometheus, ws, dict(body.status), time.time())
    AUTOSCALE_SECONDS.observe(time.monotonic() - started)
    AUTOSCALE_DECISIONS.labels(outcome.decision.reason).inc()
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)


def register_autoscaler(interval: float) -> None:
    """The built-in autoscaler: a timer per WebService that enables it (interval: a setting)."""
    kopf.timer(*WEBSERVICES, interval=interval, when=_builtin_autoscaling, id="autoscale")(
        autoscale
    )
