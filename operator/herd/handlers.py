"""kopf registration: thin handlers that call `herd.reconcile` and `herd.autoscaling.loop` and
report what they did. `register` puts every handler in a registry; importing this module
registers them in kopf's default one (settings from the environment), so `kopf run` of this
file runs the whole operator too, though `herd operator` is the supported entry point."""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from herd import api, essence, kinds, model, operator_metrics, pod_troubles
from herd import status as herd_status
from herd.api_errors import ApiError
from herd.autoscaling import loop as autoscaling
from herd.coalesce import Coalescer
from herd.drift import forged
from herd.kinds import Ref
from herd.kopf_compat import timers_without_finalizers
from herd.kube import Kube
from herd.objectmeta import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OPERATOR_MANAGERS,
    USER_STATUS_FIELDS,
)
from herd.operator_metrics import (
    AUTOSCALE_DECISIONS,
    AUTOSCALE_SECONDS,
    IGNORED_EVENTS,
    RECONCILE_SECONDS,
    RECONCILES,
    WRITES,
)
from herd.prometheus import Prometheus, read_credentials
from herd.reconcile import TransientError, reconcile
from herd.rollout import machine
from herd.settings import Settings
from herd.sightings import Sightings

WEBSERVICES = (kinds.WEBSERVICE.group, kinds.WEBSERVICE.version, kinds.WEBSERVICE.plural)
MANAGED = {MANAGED_BY_LABEL: MANAGED_BY}
#: A replica that dies without a goodbye is replaced once its peering entry is this old;
#: kopf's default (60 s) would leave WebServices unserved for a minute.
PEERING_LIFETIME_SECONDS = 15
#: Threads running the sync handlers (kopf's default is 5 per CPU).
WORKERS = 16

log = logging.getLogger("herd.handlers")
COALESCER = Coalescer()
SIGHTINGS = Sightings()
#: The trouble reasons (herd.pod_troubles) each troubled pod showed last, by (namespace, pod).
POD_TROUBLES: dict[tuple[str, str], tuple[str, ...]] = {}


def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping goes to herd.dev annotations; status belongs to Herd alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.posting.level = logging.INFO
    settings.execution.max_workers = WORKERS
    # A watch that goes quiet this long is restarted (silently frozen watches, kopf #1093).
    settings.watching.inactivity_timeout = 600
    settings.watching.server_timeout = 300
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    # With a leader Lease, every write asks its gate first (herd.leadership).
    gate = memo.get("gate")
    memo.kube = Kube.from_environment(
        connections=WORKERS, writable=gate.is_open if gate else lambda: True
    )
    memo.setdefault("settings", Settings.from_environment())
    credentials = read_credentials(memo.settings.prometheus_credentials)
    memo.prometheus = Prometheus(
        credentials=(memo.settings.prometheus_url, credentials) if credentials else None
    )
    _warn_if_pod_monitors_unavailable(memo)


def _warn_if_pod_monitors_unavailable(memo: kopf.Memo) -> None:
    """Said once at start, for the admin who turned PodMonitors on: a WebService says it only
    when its spec changes (reconcile's PodMonitorUnavailable event)."""
    if not memo.settings.pod_monitors:
        return
    try:
        served = memo.kube.served(kinds.POD_MONITOR)
    except ApiError:
        return  # each reconcile asks again
    if not served:
        log.warning(
            "--pod-monitors: the cluster serves no %s (the Prometheus Operator's CRD); "
            "no PodMonitors until it does",
            kinds.POD_MONITOR.resource,
        )


def close_clients(memo: kopf.Memo, **_: Any) -> None:
    memo.prometheus.close()


def _reconcile(
    trigger: str, memo: kopf.Memo, namespace: str, name: str, child_event: bool = False
) -> None:
    def work() -> None:
        # Every run takes the child events so far: it reads everything afresh anyway.
        if not SIGHTINGS.news((namespace, name)) and child_event:
            IGNORED_EVENTS.inc()
            return
        _reconcile_now(trigger, memo, namespace, name)

    COALESCER.run((namespace, name), work)


def _reconcile_now(trigger: str, memo: kopf.Memo, namespace: str, name: str) -> None:
    started = time.monotonic()
    try:
        outcome = reconcile(memo.kube, memo.prometheus, memo.settings, namespace, name, time.time())
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
    if outcome.seen is not None:
        SIGHTINGS.saw((namespace, name), outcome.seen)
    if outcome.report is not None:
        operator_metrics.record(outcome.report)
    elif outcome.subject is None:
        # Gone (or its namespace going): in case its delete event was missed.
        operator_metrics.forget(namespace, name)
    if not memo.kube.writable():
        return  # fenced since: its Events are no longer this replica's to post
    for kind, reason, message in outcome.events:
        kopf.event(outcome.subject, type=kind, reason=reason, message=message)


def webservice_changed(namespace: str, name: str, memo: kopf.Memo, reason: str, **_: Any) -> None:
    _reconcile(str(reason), memo, namespace, name)


def webservice_deleted(namespace: str, name: str, **_: Any) -> None:
    # Behind a reconcile under way, so it cannot put the series back; a waiting one finds the
    # WebService gone and forgets them itself.
    COALESCER.run((namespace, name), lambda: operator_metrics.forget(namespace, name))
    COALESCER.forget((namespace, name))
    SIGHTINGS.forget((namespace, name))


def child_changed(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") is None:
        return  # the initial listing: on.resume reconciles every WebService anyway
    obj = event["object"]
    seen_as = "" if event["type"] == "DELETED" else essence.digest(obj)
    for owner in body.metadata.get("ownerReferences", []):
        if owner.get("kind") == api.KIND and owner.get("apiVersion", "").startswith(api.GROUP):
            key = (body.metadata.namespace, owner["name"])
            SIGHTINGS.arrived(key, Ref.of(obj), seen_as)
            _reconcile(f"child-{body['kind'].lower()}", memo, *key, child_event=True)


def pod_changed(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A pod of a WebService: reconcile it when the pod's troubles change (its init container
    failed, it was OOM-killed, it crash-loops, or it no longer does), since no change of the
    Deployment says so. Every other pod event is no news."""
    key = (body.metadata.namespace, body.metadata.name)
    was = POD_TROUBLES.pop(key, ())
    if event.get("type") == "DELETED":
        return
    now = tuple(p.reason for p in pod_troubles.problems([dict(body)]))
    if now:
        POD_TROUBLES[key] = now
    owner = body.metadata.labels.get(INSTANCE_LABEL)
    # The initial listing only remembers: on.resume reconciles every WebService anyway.
    if now != was and owner and event.get("type") is not None:
        _reconcile("pod", memo, body.metadata.namespace, owner)


def _status_forged(body: kopf.Body, **_: Any) -> bool:
    return bool(forged(dict(body), OPERATOR_MANAGERS, USER_STATUS_FIELDS))


def status_forged(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Someone else wrote the status (herd-promoter may, for intents): the reconciler removes
    what is not an intent. A change of status alone triggers nothing else."""
    _reconcile("status", memo, body.metadata.namespace, body.metadata.name)


def canary_tick(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A rollout moves with time too (pauses, analyses, intents): reconcile, which steps it.
    An idle one costs no API call."""
    if machine.moves_with_time(dict(body.status)):
        _reconcile("canary", memo, body.metadata.namespace, body.metadata.name)


def retry(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile("retry", memo, body.metadata.namespace, body.metadata.name)


def _retry_wanted(status: kopf.Status, **_: Any) -> bool:
    return herd_status.retry_wanted(dict(status))


def _builtin_autoscaling(spec: kopf.Spec, **_: Any) -> bool:
    scaling = spec.get("autoscaling") or {}
    return bool(scaling.get("enabled")) and scaling.get("engine", "builtin") == "builtin"


def _canary_wanted(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("canary"))


def autoscale(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    try:
        ws = model.parse(dict(body), memo.settings)
    except model.InvalidSpec:
        return  # the reconciler reports it as Degraded
    started = time.monotonic()
    try:
        outcome = autoscaling.autoscale(
            memo.kube, memo.prometheus, ws, dict(body.status), time.time()
        )
    except ApiError as error:
        if error.status == 404 or error.namespace_terminating:
            return  # deleted, or its namespace going, since the timer started
        raise
    AUTOSCALE_SECONDS.observe(time.monotonic() - started)
    AUTOSCALE_DECISIONS.labels(outcome.decision.reason).inc()
    if not memo.kube.writable():
        return  # fenced since, as for a reconcile's Events
    for kind, reason, message in outcome.events:
        kopf.event(body, type=kind, reason=reason, message=message)


def register(settings: Settings, registry: kopf.OperatorRegistry) -> None:
    """Every handler of the operator, in `registry`; timer intervals from `settings`."""
    # Credentials as the Kubernetes client finds them (in-cluster, else the kubeconfig): a fresh
    # registry has none of the fallbacks kopf's default one carries.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.startup(registry=registry)(configure)
    kopf.on.cleanup(registry=registry)(close_clients)
    for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
        on(*WEBSERVICES, registry=registry)(webservice_changed)
    kopf.on.delete(*WEBSERVICES, optional=True, registry=registry)(webservice_deleted)
    kopf.on.event(*WEBSERVICES, id="status-forged", when=_status_forged, registry=registry)(
        status_forged
    )
    for kind in kinds.CHILDREN:
        kopf.on.event(
            kind.group,
            kind.version,
            kind.plural,
            labels=MANAGED,
            id=f"child-{kind.plural}",
            registry=registry,
        )(child_changed)
    pods = kinds.POD
    kopf.on.event(
        pods.group, pods.version, pods.plural, labels=MANAGED, id="pods", registry=registry
    )(pod_changed)
    timers = (
        ("autoscale", settings.autoscale_interval, _builtin_autoscaling, autoscale),
        ("canary", settings.canary_interval, _canary_wanted, canary_tick),
        ("retry", settings.retry_interval, _retry_wanted, retry),
    )
    for timer_id, interval, when, handler in timers:
        kopf.timer(*WEBSERVICES, id=timer_id, interval=interval, when=when, registry=registry)(
            handler
        )
    timers_without_finalizers(registry)


register(Settings.from_environment(), kopf.get_default_registry())
