"""The WebService spec as typed values, parsed from the API object after defaulting.

The API server defaults and validates against the CRD; `parse` applies the same defaults (from
`herd.api`) so offline rendering sees what the cluster would, and reports what the schema
cannot check as `InvalidSpec`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar, Literal

from herd import annotation_policy, api, endpoints
from herd.schema import Schema
from herd.serving import runtime
from herd.settings import Settings

Interface = Literal["wsgi", "asgi"]
RuntimeSource = Literal["image", "inject"]
Workload = Literal["io", "cpu", "mixed"]
WorkerClass = Literal["auto", "sync", "gthread", "gevent", "uvicorn"]


class InvalidSpec(ValueError):
    """The spec cannot be served as written; the message tells the user what to change, the
    reason (a Degraded condition's) what kind of problem it is."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.reason = reason


def _default(schema: Schema, name: str) -> Any:
    """The API's default for one field: the dataclasses below state no default of their own."""
    return schema.properties[name].default


@dataclass(frozen=True)
class ServerSpec:
    workload: Workload = _default(api.SERVER, "workload")
    worker_class: WorkerClass = _default(api.SERVER, "workerClass")
    workers: int = _default(api.SERVER, "workers")
    threads: int = _default(api.SERVER, "threads")
    timeout_seconds: int = _default(api.SERVER, "timeoutSeconds")
    graceful_timeout_seconds: int = _default(api.SERVER, "gracefulTimeoutSeconds")
    keep_alive_seconds: int = _default(api.SERVER, "keepAliveSeconds")
    max_requests: int = _default(api.SERVER, "maxRequests")
    preload: bool = _default(api.SERVER, "preload")


@dataclass(frozen=True)
class GatewayRef:
    name: str
    namespace: str | None = None
    section_name: str | None = None


@dataclass(frozen=True)
class IngressRoute:
    """spec.route.ingress: an ingress-nginx Ingress."""

    #: Metric sources this router feeds; the first is the default.
    METRIC_SOURCES: ClassVar[tuple[api.MetricSourceName, ...]] = ("app", "ingress-nginx", "traefik")
    host: str
    path: str
    class_name: str  # "" leaves it to the cluster's default IngressClass
    tls_secret_name: str | None
    max_body_size: str
    annotations: dict[str, str]  # the user's, less what the policy refused
    refused_annotations: tuple[str, ...] = ()  # what it refused, and why: Degraded


@dataclass(frozen=True)
class HttpRoute:
    """spec.route.httpRoute: a Gateway API HTTPRoute."""

    METRIC_SOURCES: ClassVar[tuple[api.MetricSourceName, ...]] = ("app", "traefik")
    host: str
    path: str
    gateway: GatewayRef


Route = IngressRoute | HttpRoute


@dataclass(frozen=True)
class MetricsSpec:
    source: api.MetricSourceName = api.METRIC_SOURCES[0]
    prometheus_url: str = Settings.prometheus_url


@dataclass(frozen=True)
class AutoscalingSpec:
    enabled: bool = _default(api.AUTOSCALING, "enabled")
    engine: Literal["builtin", "keda"] = _default(api.AUTOSCALING, "engine")
    min_replicas: int = _default(api.AUTOSCALING, "minReplicas")
    max_replicas: int = _default(api.AUTOSCALING, "maxReplicas")
    target_rpm_per_replica: int = _default(api.AUTOSCALING, "targetRPMPerReplica")
    max_error_rate: float = _default(api.AUTOSCALING, "maxErrorRate")
    scale_down_stabilization_seconds: int = _default(
        api.AUTOSCALING, "scaleDownStabilizationSeconds"
    )
    target_utilization: float | None = None  # None: RPM alone


#: The value ingress-nginx's canary-by-header and canary-by-cookie pin a request with.
ALWAYS = "always"


@dataclass(frozen=True)
class RequestMatch:
    """Requests a setHeaderRoute or setCookieRoute step (or an A/B test) pins to the canary."""

    kind: api.MatchKind
    name: str
    value: str | None = None  # a header's exact value; None: ingress-nginx's "always"/"never"


@dataclass(frozen=True)
class CanaryStep:
    set_weight: int | None = None
    pause_seconds: int | None = None  # None with is_pause: wait for promotion
    is_pause: bool = False
    match: RequestMatch | None = None
    passes: int | None = None  # an A/B test's: wait for this many passing analyses


Threshold = Literal["max", "min", "maxIncreaseOverStable"]


@dataclass(frozen=True)
class MetricCheck:
    """One of analysis.metrics: a user's query template and its one threshold."""

    name: str
    query: str
    threshold: Threshold
    limit: float


@dataclass(frozen=True)
class StableComparison:
    """analysis.compareWithStable: how much worse than the stable the canary may be."""

    max_error_rate_increase: float = _default(api.COMPARE_WITH_STABLE, "maxErrorRateIncrease")
    error_rate_tolerance: float = _default(api.COMPARE_WITH_STABLE, "errorRateTolerance")
    max_p99_latency_increase: float = _default(api.COMPARE_WITH_STABLE, "maxP99LatencyIncrease")
    p99_latency_tolerance_ms: int = _default(api.COMPARE_WITH_STABLE, "p99LatencyToleranceMs")


@dataclass(frozen=True)
class AnalysisSpec:
    interval_seconds: int = _default(api.ANALYSIS, "intervalSeconds")
    max_error_rate: float = _default(api.ANALYSIS, "maxErrorRate")
    max_p99_latency_ms: int = _default(api.ANALYSIS, "maxP99LatencyMs")
    min_requests: int = _default(api.ANALYSIS, "minRequests")
    failure_limit: int = _default(api.ANALYSIS, "failureLimit")
    metrics: tuple[MetricCheck, ...] = ()
    compare_with_stable: StableComparison | None = None


@dataclass(frozen=True)
class CanarySpec:
    steps: tuple[CanaryStep, ...]
    analysis: AnalysisSpec = AnalysisSpec()
    progress_deadline_seconds: int = _default(api.CANARY, "progressDeadlineSeconds")


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
    runtime: RuntimeSource = _default(api.SPEC, "runtime")
    #: The operator's runtime image, copied from when `runtime` is `inject` (the admin's choice).
    runtime_image: str = ""
    interface: Interface = _default(api.SPEC, "interface")
    port: int = _default(api.SPEC, "port")
    metrics_port: int = _default(api.SPEC, "metricsPort")
    replicas: int = _default(api.SPEC, "replicas")
    image_pull_policy: str | None = None
    env: tuple[dict[str, Any], ...] = ()
    resources: Resources = Resources()
    health_path: str = _default(api.SPEC, "healthPath")
    server: ServerSpec = ServerSpec()
    route: Route | None = None
    autoscaling: AutoscalingSpec = AutoscalingSpec()
    canary: CanarySpec | None = None
    metrics: MetricsSpec = MetricsSpec()


_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_SECONDS_PER_UNIT = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
#: The Kubernetes quantity grammar: a signed decimal number, then a binary-SI suffix, a
#: decimal-SI suffix, or a decimal exponent (e3, E-2). "1E" is exa; "1e3" is an exponent.
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$"
)
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
#: Kubernetes stores quantities in 64 bits: anything larger is no amount a pod can have.
_MAX_QUANTITY = Decimal(2**63 - 1)


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


def is_quantity(value: int | float | str) -> bool:
    """Is `value` written in the Kubernetes quantity grammar (CEL's isQuantity)?"""
    return bool(_QUANTITY.match(str(value).strip()))


def quantity(value: int | float | str) -> Decimal:
    """The value of a Kubernetes quantity (`500m` -> 0.5, `256Mi` -> 268435456, `1Ei`)."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise InvalidSpec(f"{value!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    if suffix in _BINARY_SI:
        amount = Decimal(number) * 2 ** _BINARY_SI[suffix]
    else:
        exponent = _DECIMAL_SI[suffix] if suffix in _DECIMAL_SI else int(suffix[1:])
        if abs(exponent) > 100:
            raise InvalidSpec(f"{value!r} is beyond any amount Kubernetes stores")
        amount = Decimal(number).scaleb(exponent)
    if abs(amount) > _MAX_QUANTITY:
        raise InvalidSpec(f"{value!r} is beyond any amount Kubernetes stores (2^63 - 1)")
    return amount


#: The step only an A/B test has (no API step: `plan` writes it): wait for passing analyses.
AB_TEST_PASSES = "analyses"


def _step(raw: dict[str, Any]) -> CanaryStep:
    if "setWeight" in raw:
        return CanaryStep(set_weight=int(raw["setWeight"]))
    if "setHeaderRoute" in raw:
        header = raw["setHeaderRoute"]
        return CanaryStep(match=RequestMatch("header", header["name"], header.get("value")))
    if "setCookieRoute" in raw:
        return CanaryStep(match=RequestMatch("cookie", raw["setCookieRoute"]["name"]))
    if AB_TEST_PASSES in raw:
        return CanaryStep(passes=int(raw[AB_TEST_PASSES]))
    pause = raw.get("pause") or {}
    duration = pause.get("duration")
    return CanaryStep(
        is_pause=True, pause_seconds=None if duration is None else duration_seconds(duration)
    )


def plan(canary: dict[str, Any]) -> list[dict[str, Any]]:
    """spec.canary as the steps it runs, as written: its steps, or an A/B test's two, the match
    (pinned as a setHeaderRoute or setCookieRoute step would) then `analyses` passing checks."""
    ab_test = canary.get("abTest")
    if ab_test is None:
        return list(canary.get("steps") or [])
    match = ab_test.get("match") or {}
    pin = (
        {"setHeaderRoute": match["header"]}
        if "header" in match
        else {"setCookieRoute": match.get("cookie") or {}}
    )
    return [pin, {AB_TEST_PASSES: ab_test.get("analyses", _default(api.AB_TEST, "analyses"))}]


def _steps(raw: list[dict[str, Any]]) -> tuple[CanaryStep, ...]:
    steps = tuple(_step(s) for s in raw)
    if not any(s.set_weight for s in steps):
        raise InvalidSpec(f"canary.{api.CANARY.rules[0].message}")
    if sum(s.match is not None for s in steps) > 1:
        raise InvalidSpec(f"canary.{api.CANARY.rules[1].message}")
    return steps


def _canary_steps(canary: dict[str, Any]) -> tuple[CanaryStep, ...]:
    if ("steps" in canary) == ("abTest" in canary):
        raise InvalidSpec(api.CANARY.rules[2].message)
    if "abTest" in canary:
        match = canary["abTest"].get("match") or {}
        if ("header" in match) == ("cookie" in match):
            raise InvalidSpec(api.AB_TEST.properties["match"].rules[0].message)
        return tuple(_step(s) for s in plan(canary))
    return _steps(canary["steps"])


def _quantities(raw: dict[str, Any] | None) -> dict[str, str]:
    result = {}
    for name, value in (raw or {}).items():
        quantity(value)  # reject what the cluster would reject, before rendering it
        result[name] = str(value)
    return result


#: Spec fields that shape the pod template: a change to any of them is a new revision, rolled
#: out as a canary when `spec.canary` is set. `herd.held` keeps these for the version
#: that serves, so the stable Deployment can be rendered while a canary is judged.
POD_FIELDS = (
    "image",
    "imagePullPolicy",
    "app",
    "runtime",
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


DEFAULTS = Settings()


def _pod_values(spec: dict[str, Any]) -> dict[str, Any]:
    """The WebService fields that POD_FIELDS shape, from a defaulted spec."""
    server = spec["server"]
    resources = spec.get("resources") or {}
    env = _env(spec.get("env") or ())
    if spec["runtime"] == "inject":
        _check_pythonpath(env)
    return dict(
        image=spec["image"],
        app=spec["app"],
        runtime=spec["runtime"],
        interface=spec["interface"],
        port=spec["port"],
        metrics_port=spec["metricsPort"],
        image_pull_policy=spec.get("imagePullPolicy"),
        env=env,
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
            preload=server["preload"],
        ),
    )


def _env(items: Any) -> tuple[dict[str, Any], ...]:
    """The user's variables, none of them one Herd sets (the schema's rule, offline too)."""
    for item in items:
        name = item.get("name", "")
        if name.startswith(runtime.RESERVED_ENV_PREFIX) or name in runtime.RESERVED_ENV:
            raise InvalidSpec(f"env {name}: {api.ENV_VAR.rules[0].message}")
    return tuple(items)


def _check_pythonpath(env: tuple[dict[str, Any], ...]) -> None:
    """An injected runtime goes in front of the user's PYTHONPATH, which therefore needs a
    value to put it in front of: one from a ConfigMap or Secret would be lost."""
    for item in env:
        if item["name"] == "PYTHONPATH" and "value" not in item:
            raise InvalidSpec(
                "env PYTHONPATH: runtime inject puts herd-runtime first on it, so it needs a "
                "value, not valueFrom"
            )


def _route(raw: dict[str, Any] | None, defaults: Settings) -> Route | None:
    if raw is None:
        return None
    if "ingress" in raw:
        ingress = raw["ingress"]
        notes = dict(ingress.get("annotations") or {})
        refused = annotation_policy.refused(notes, defaults)
        return IngressRoute(
            host=ingress["host"],
            path=ingress["path"],
            class_name=ingress.get("className", defaults.ingress_class),
            tls_secret_name=ingress.get("tlsSecretName"),
            max_body_size=str(ingress["maxBodySize"]),
            annotations={k: v for k, v in notes.items() if k not in refused},
            refused_annotations=tuple(f"{key} ({why})" for key, why in refused.items()),
        )
    if "httpRoute" in raw:
        route = raw["httpRoute"]
        gateway = route["gateway"]
        return HttpRoute(
            host=route["host"],
            path=route["path"],
            gateway=GatewayRef(
                gateway["name"], gateway.get("namespace"), gateway.get("sectionName")
            ),
        )
    raise InvalidSpec("spec.route names no router: set spec.route.ingress or spec.route.httpRoute")


def route_of(body: dict[str, Any], defaults: Settings = DEFAULTS) -> Route | None:
    """The route of a WebService object (defaults applied as the API server does), for readers
    that need only that of it (herd dashboard); InvalidSpec as `parse` raises it."""
    spec = api.ROOT.apply_defaults(body).get("spec") or {}
    return _route(spec.get("route"), defaults)


#: Without a route, only the app's own metrics exist.
UNROUTED_METRIC_SOURCES: tuple[api.MetricSourceName, ...] = ("app",)


def _metrics(raw: dict[str, Any], route: Route | None, defaults: Settings) -> MetricsSpec:
    allowed = route.METRIC_SOURCES if route is not None else UNROUTED_METRIC_SOURCES
    source = raw.get("source", allowed[0])
    if source not in allowed:
        raise InvalidSpec(
            f"metrics.source {source} is not available with this spec.route "
            f"(allowed here: {', '.join(allowed)}): ingress-nginx needs spec.route.ingress, "
            "traefik a route"
        )
    url = raw.get("prometheusURL", defaults.prometheus_url)
    try:
        endpoints.check(url, defaults)
    except endpoints.NotAllowed as error:
        raise InvalidSpec(str(error), reason="PrometheusNotAllowed") from error
    return MetricsSpec(source, url)


def _utilization(scaling: dict[str, Any], metrics: MetricsSpec) -> float | None:
    """autoscaling.targetUtilization, where the CRD's rules allow it (checked here too, for
    offline rendering and objects admitted before the rules)."""
    if "targetUtilization" not in scaling:
        return None
    if metrics.source != "app":
        raise InvalidSpec(api.SPEC.rules[4].message)
    if scaling["engine"] != "builtin":
        raise InvalidSpec(f"autoscaling.{api.AUTOSCALING.rules[1].message}")
    return float(scaling["targetUtilization"])


_QUERY_TEMPLATE = re.compile(api.QUERY_TEMPLATE)


def _metric_check(raw: dict[str, Any]) -> MetricCheck:
    """One metric check, with the CRD's rules checked offline too."""
    set_thresholds = [t for t in api.METRIC_THRESHOLDS if t in raw]
    if len(set_thresholds) != 1:
        raise InvalidSpec(f"analysis.metrics {raw['name']}: {api.METRIC_CHECK.rules[0].message}")
    if not _QUERY_TEMPLATE.match(raw["query"]):
        raise InvalidSpec(f"analysis.metrics {raw['name']}: {api.METRIC_CHECK.rules[1].message}")
    threshold = set_thresholds[0]
    return MetricCheck(raw["name"], raw["query"], threshold, float(raw[threshold]))


def _analysis(raw: dict[str, Any]) -> AnalysisSpec:
    compare = raw.get("compareWithStable")
    return AnalysisSpec(
        interval_seconds=raw["intervalSeconds"],
        max_error_rate=float(raw["maxErrorRate"]),
        max_p99_latency_ms=raw["maxP99LatencyMs"],
        min_requests=raw["minRequests"],
        failure_limit=raw["failureLimit"],
        metrics=tuple(_metric_check(m) for m in raw.get("metrics") or ()),
        compare_with_stable=None
        if compare is None
        else StableComparison(
            max_error_rate_increase=float(compare["maxErrorRateIncrease"]),
            error_rate_tolerance=float(compare["errorRateTolerance"]),
            max_p99_latency_increase=float(compare["maxP99LatencyIncrease"]),
            p99_latency_tolerance_ms=compare["p99LatencyToleranceMs"],
        ),
    )


def parse(body: dict[str, Any], defaults: Settings = DEFAULTS) -> WebService:
    """A typed WebService from an API object (defaults applied as the API server does);
    what the spec leaves to the operator (ingress class, Prometheus) comes from `defaults`."""
    body = api.ROOT.apply_defaults(body)
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    for required in api.SPEC.required:
        if not spec.get(required):
            raise InvalidSpec(f"spec.{required} is required")
    scaling = spec["autoscaling"]
    canary = spec.get("canary")
    route = _route(spec.get("route"), defaults)
    metrics = _metrics(spec["metrics"], route, defaults)
    return WebService(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", "default"),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        replicas=spec["replicas"],
        runtime_image=defaults.runtime_image,
        **_pod_values(spec),
        route=route,
        autoscaling=AutoscalingSpec(
            enabled=scaling["enabled"],
            engine=scaling["engine"],
            min_replicas=scaling["minReplicas"],
            max_replicas=scaling["maxReplicas"],
            target_rpm_per_replica=scaling["targetRPMPerReplica"],
            max_error_rate=float(scaling["maxErrorRate"]),
            scale_down_stabilization_seconds=scaling["scaleDownStabilizationSeconds"],
            target_utilization=_utilization(scaling, metrics),
        ),
        metrics=metrics,
        canary=None
        if canary is None
        else CanarySpec(
            steps=_canary_steps(canary),
            analysis=_analysis(canary["analysis"]),
            progress_deadline_seconds=canary["progressDeadlineSeconds"],
        ),
    )


def with_pod_fields(ws: WebService, snapshot: dict[str, Any]) -> WebService:
    """The WebService as it would be with the pod template of `snapshot` (the pod fields
    herd.held keeps for the version that serves); only the snapshot is parsed."""
    spec = api.SPEC.apply_defaults(snapshot)
    return replace(ws, **_pod_values(spec))
