"""The WebService spec as typed values, parsed from the API object after defaulting.

The API server defaults and validates against the CRD; `parse` applies the same defaults (from
`herd.api`) so offline rendering sees what the cluster would, and reports what the schema
cannot check as `InvalidSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from herd import api
from herd.settings import Settings

Interface = Literal["wsgi", "asgi"]
Workload = Literal["io", "cpu", "mixed"]
WorkerClass = Literal["auto", "sync", "gthread", "gevent", "uvicorn"]


class InvalidSpec(ValueError):
    """The spec cannot be served as written; the message tells the user what to change."""


@dataclass(frozen=True)
class ServerSpec:
    workload: Workload = "mixed"
    worker_class: WorkerClass = "auto"
    workers: int = 0
    threads: int = 0
    timeout_seconds: int = 30
    graceful_timeout_seconds: int = 30
    keep_alive_seconds: int = 0
    max_requests: int = 0


@dataclass(frozen=True)
class GatewayRef:
    name: str
    namespace: str | None = None
    section_name: str | None = None


@dataclass(frozen=True)
class IngressSpec:
    host: str
    path: str = "/"
    class_name: str = "nginx"  # "" leaves it to the cluster's default IngressClass
    tls_secret_name: str | None = None
    max_body_size: str = "1m"
    annotations: dict[str, str] = field(default_factory=dict)
    gateway: GatewayRef | None = None  # route with Gateway API instead of an nginx Ingress


@dataclass(frozen=True)
class MetricsSpec:
    source: Literal["app", "ingress-nginx"] = "app"
    prometheus_url: str = Settings.prometheus_url


@dataclass(frozen=True)
class AutoscalingSpec:
    enabled: bool = False
    engine: Literal["builtin", "keda"] = "builtin"
    min_replicas: int = 1
    max_replicas: int = 10
    target_rpm_per_replica: int = 600
    max_error_rate: float = 0.05
    scale_down_stabilization_seconds: int = 300


@dataclass(frozen=True)
class CanaryStep:
    set_weight: int | None = None
    pause_seconds: int | None = None  # None with is_pause: wait for promotion
    is_pause: bool = False


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: int = 30
    max_error_rate: float = 0.01
    max_p99_latency_ms: int = 0
    min_requests: int = 50
    failure_limit: int = 2


@dataclass(frozen=True)
class CanarySpec:
    steps: tuple[CanaryStep, ...]
    analysis: AnalysisSpec = AnalysisSpec()
    progress_deadline_seconds: int = 600


@dataclass(frozen=True)
class Resources:
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebService:
    name: str
    namespace: str
    uid: str
    generation: int
    image: str
    app: str
    interface: Interface = "wsgi"
    port: int = 8000
    metrics_port: int = 9102
    replicas: int = 1
    image_pull_policy: str | None = None
    env: tuple[dict[str, Any], ...] = ()
    resources: Resources = Resources()
    health_path: str = "/healthz"
    server: ServerSpec = ServerSpec()
    ingress: IngressSpec | None = None
    autoscaling: AutoscalingSpec = AutoscalingSpec()
    canary: CanarySpec | None = None
    metrics: MetricsSpec = MetricsSpec()


_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_SECONDS_PER_UNIT = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]*)$")
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}


def duration_seconds(value: int | str) -> int:
    """Seconds in `60`, `"60"`, `"5m"` or `"1h30m"` (rounded up to whole seconds)."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidSpec(f"{value!r} is not a duration such as 30s, 5m or 1h30m")
    total = sum(Decimal(n) * _SECONDS_PER_UNIT[u] for n, u in parts)
    return int(total.to_integral_value(rounding="ROUND_CEILING"))


def quantity(value: int | float | str) -> Decimal:
    """The value of a Kubernetes quantity (`500m` → 0.5, `256Mi` → 268435456)."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise InvalidSpec(f"{value!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation as error:
        raise InvalidSpec(f"{value!r} is not a Kubernetes quantity") from error
    if suffix[:1] in ("e", "E"):
        return base * Decimal(10) ** int(suffix[1:])
    if suffix not in _SUFFIX:
        raise InvalidSpec(f"{value!r} has an unknown unit {suffix!r}")
    return base * _SUFFIX[suffix]


def _step(raw: dict[str, Any]) -> CanaryStep:
    if "setWeight" in raw:
        return CanaryStep(set_weight=int(raw["setWeight"]))
    pause = raw.get("pause") or {}
    duration = pause.get("duration")
    return CanaryStep(
        is_pause=True, pause_seconds=None if duration is None else duration_seconds(duration)
    )


def _quantities(raw: dict[str, Any] | None) -> dict[str, str]:
    result = {}
    for name, value in (raw or {}).items():
        quantity(value)  # reject what the cluster would reject, before rendering it
        result[name] = str(value)
    return result


#: Spec fields that shape the pod template: a change to any of them is a new revision, rolled
#: out as a canary when `spec.canary` is set. `status.stableSpec` keeps these for the version
#: that serves, so the stable Deployment can be rendered while a canary is judged.
POD_FIELDS = (
    "image",
    "imagePullPolicy",
    "app",
    "interface",
    "port",
    "metricsPort",
    "env",
    "resources",
    "healthPath",
    "server",
)


def pod_fields(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in POD_FIELDS if key in spec}


def with_pod_fields(body: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    """The WebService as it would be with the pod template of `snapshot` (a stable version)."""
    rest = {k: v for k, v in (body.get("spec") or {}).items() if k not in POD_FIELDS}
    return {**body, "spec": {**rest, **snapshot}}


DEFAULTS = Settings()


def parse(body: dict[str, Any], defaults: Settings = DEFAULTS) -> WebService:
    """A typed WebService from an API object (defaults applied as the API server does);
    what the spec leaves to the operator (ingress class, Prometheus) comes from `defaults`."""
    body = api.ROOT.apply_defaults(body)
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    for required in api.SPEC.required:
        if not spec.get(required):
            raise InvalidSpec(f"spec.{required} is required")
    server = spec["server"]
    scaling = spec["autoscaling"]
    ingress = spec.get("ingress")
    canary = spec.get("canary")
    resources = spec.get("resources") or {}
    return WebService(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        image=spec["image"],
        app=spec["app"],
        interface=spec["interface"],
        port=spec["port"],
        metrics_port=spec["metricsPort"],
        replicas=spec["replicas"],
        image_pull_policy=spec.get("imagePullPolicy"),
        env=tuple(spec.get("env") or ()),
        resources=Resources(
            _quantities(resources.get("requests")), _quantities(resources.get("limits"))
        ),
        health_path=spec["healthPath"],
        server=ServerSpec(
            workload=server["workload"],
            worker_class=server["workerClass"],
            workers=server["workers"],
            threads=server["threads"],
            timeout_seconds=server["timeoutSeconds"],
            graceful_timeout_seconds=server["gracefulTimeoutSeconds"],
            keep_alive_seconds=server["keepAliveSeconds"],
            max_requests=server["maxRequests"],
        ),
        ingress=None
        if ingress is None
        else IngressSpec(
            host=ingress["host"],
            path=ingress["path"],
            class_name=ingress.get("className", defaults.ingress_class),
            tls_secret_name=ingress.get("tlsSecretName"),
            max_body_size=str(ingress["maxBodySize"]),
            annotations=dict(ingress.get("annotations") or {}),
            gateway=None
            if "gateway" not in ingress
            else GatewayRef(
                name=ingress["gateway"]["name"],
                namespace=ingress["gateway"].get("namespace"),
                section_name=ingress["gateway"].get("sectionName"),
            ),
        ),
        autoscaling=AutoscalingSpec(
            enabled=scaling["enabled"],
            engine=scaling["engine"],
            min_replicas=scaling["minReplicas"],
            max_replicas=scaling["maxReplicas"],
            target_rpm_per_replica=scaling["targetRPMPerReplica"],
            max_error_rate=float(scaling["maxErrorRate"]),
            scale_down_stabilization_seconds=scaling["scaleDownStabilizationSeconds"],
        ),
        metrics=MetricsSpec(
            source=spec["metrics"]["source"],
            prometheus_url=spec["metrics"].get("prometheusURL", defaults.prometheus_url),
        ),
        canary=None
        if canary is None
        else CanarySpec(
            steps=tuple(_step(s) for s in canary["steps"]),
            analysis=AnalysisSpec(
                interval_seconds=canary["analysis"]["intervalSeconds"],
                max_error_rate=float(canary["analysis"]["maxErrorRate"]),
                max_p99_latency_ms=canary["analysis"]["maxP99LatencyMs"],
                min_requests=canary["analysis"]["minRequests"],
                failure_limit=canary["analysis"]["failureLimit"],
            ),
            progress_deadline_seconds=canary["progressDeadlineSeconds"],
        ),
    )
